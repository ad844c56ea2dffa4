// A projection by a Weight (weight.cuh), whatever its dtype: bf16 weights go to gemm() and
// gemv_gated() (gemm.cuh), FP8 ones to fp8_linear() and fp8_gemv_gated() (fp8_gemm.cuh). The
// forward pass, the experts and the shared expert project through these two alone (and decode
// steps through their RMSNorm-folded forms, linear_rms and linear_gated_rms).
#pragma once
#include "cuda/fp8_gemm.cuh"
#include "cuda/fp8_gemv.cuh"
#include "cuda/gemm.cuh"
#include "cuda/gemv_small.cuh"
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

// The RMSNorm deferred between two small-M GEMVs (rms_fold.cuh DeferredNorm, FASTGEN_NORM_DEFER).
// linear_small_takes: linear() and linear_gated() of w at M rows of width K run the small-M kernel.
inline bool linear_small_takes(const Weight &w, int M, int K) {
  if (w.fp8()) return fp8_small_takes(M) && K % 16 == 0;
  return w.dtype == kWeightBf16 && gemm_small_takes(M, K);
}
// linear() (act < 0) or linear_gated() (act 0..2: y bf16 [M, N / 2]) through that kernel, reading
// dn (x is bf16(h * w)) or writing it (y_f32 and accumulate: y is h). Where linear_small_takes;
// returns 0 or FG_ERR_DEVICE (a failed launch) with err set, as linear().
inline int linear_small(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                        const float *bias, int M, int N, int K, const DeferredNorm &dn, cudaStream_t st, char *err) {
  if (w.fp8()) fp8_gemv_small(x, w, y, y_f32, accumulate, act, bias, M, N, K, st, dn);
  else if (act >= 0) gemv_small_gated(x, (const bf16 *)w.p, bias, act, (bf16 *)y, M, N, K, st, dn);
  else gemv_small(x, (const bf16 *)w.p, y, y_f32, accumulate, M, N, K, st, dn);
  FGCU_LAUNCHED(dn.part ? "gemv_small (deferred norm read)" : "gemv_small (deferred norm written)");
  return 0;
}

// The qkv projection with RoPE and the K/V write in the small-M kernel's epilogue
// (gemv_small.cuh launch_gemv_small_rope: q rotated into ra.qkv, K / V into the cache; x as
// linear_small's, dn.part set or not): where that kernel takes w at M rows, the layer's qkv can
// take RoPE (rope.cuh qkv_rope_fusable), a warp takes one 16-row tile and FASTGEN_QKV_ROPE=3 asks.
inline bool linear_small_rope_takes(const Weight &w, const RopeArgs &ra, int M, int N, int K) {
  return qkv_rope_small() && linear_small_takes(w, M, K) && qkv_rope_fusable(ra, N, K) && gemv_small_rt() == 1;
}
inline int linear_small_rope(const bf16 *x, const Weight &w, const RopeArgs &ra, int M, int N, int K,
                             const DeferredNorm &dn, cudaStream_t st, char *err) {
  if (w.fp8()) fp8_gemv_small_rope(x, w, ra, M, N, K, st, dn);
  else gemv_small_rope(x, (const bf16 *)w.p, ra, M, N, K, st, dn);
  FGCU_LAUNCHED("gemv_small (qkv + RoPE + K/V write)");
  return 0;
}

}  // namespace fgcu
