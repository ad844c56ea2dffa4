// A projection by a Weight (weight.cuh), whatever its dtype: bf16 weights go to gemm() and
// gemv_gated() (gemm.cuh), FP8 ones to fp8_linear() and fp8_gemv_gated() (fp8_gemm.cuh). The
// forward pass, the experts and the shared expert project through these two alone (and decode
// steps through their RMSNorm-folded forms, linear_rms and linear_gated_rms).
#pragma once
#include "cuda/fp8_gemm.cuh"
#include "cuda/gemm.cuh"
#include "cuda/weight.cuh"

namespace fgcu {

// The GEMM engines of one rank.
struct Gemms {
  Gemm *bf16 = nullptr;
  Fp8Gemm *fp8 = nullptr;
};

// y[M, N] (+)= x[M, K] · w^T, gemm()'s contract. x: [M, K] bf16 row-major.
inline int linear(const Gemms &g, const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int M,
                  int N, int K, cudaStream_t st, char *err) {
  if (w.fp8()) return fp8_linear(g.fp8, x, w, y, y_f32, accumulate, M, N, K, st, err);
  if (w.dtype != kWeightBf16) {
    snprintf(err, 512, "linear: a weight of [%d, %d] was never loaded", N, K);
    return FG_ERR_INTERNAL;
  }
  return gemm(g.bf16, x, (const bf16 *)w.p, y, y_f32, accumulate, M, N, K, st, err);
}

// Gated MLP input for skinny M, gemv_gated()'s contract: false (nothing launched) when the
// shape is not one the dtype's GEMV takes; then linear() + activation().
inline bool linear_gated(const bf16 *x, const Weight &w, const float *bias, int act, bf16 *y, int M, int N, int K,
                         cudaStream_t st) {
  if (w.fp8()) return fp8_gemv_gated(x, w, bias, act, y, M, N, K, st);
  return w.dtype == kWeightBf16 && gemv_gated(x, (const bf16 *)w.p, bias, act, y, M, N, K, st);
}

// The RMSNorm rows x = rmsnorm(h) * norm_w projected with the norm folded into the GEMV
// (gemm.cuh gemv_rms; bit-identical to norm_rows + linear / linear_gated): bf16 weights at the
// GEMV's token counts. The *_fits predicates say whether, so the caller can skip the norm kernel.
inline bool linear_rms_fits(const Weight &w, int M, int K) {
  return w.dtype == kWeightBf16 && gemv_rms_fits(M, K);
}
inline bool linear_gated_rms_fits(const Weight &w, int act, int M, int N, int K) {
  return linear_rms_fits(w, M, K) && N % 2 == 0 && act >= 0 && act <= 2;
}
inline int linear_rms(const RmsRows &x, const Weight &w, bf16 *y, int M, int N, int K, cudaStream_t st, char *err) {
  return gemv_rms(x, (const bf16 *)w.p, y, M, N, K, st, err);
}
inline int linear_gated_rms(const RmsRows &x, const Weight &w, const float *bias, int act, bf16 *y, int M, int N,
                            int K, cudaStream_t st, char *err) {
  return gemv_rms_gated(x, (const bf16 *)w.p, bias, act, y, M, N, K, st, err);
}

}  // namespace fgcu
