// The small-M tensor-core GEMV (gemv_small.cuh) on bf16 weights: gemm() and gemv_gated() send
// 2 <= M <= 16 here (gemm.cu), gemv_rms() and gemv_rms_gated() the same with the norm folded in.
#include "cuda/gemv_small.cuh"

namespace fgcu {

// One 16-row tile a warp unless FASTGEN_GEMV_ROWS=32 asks for two. Two tiles a warp (more loads
// in flight, one block an SM fewer) used to be the choice for N >= 64 rows a SM (qkv, gate_up);
// on an H100 (2026-12-07, bench/results/device-wave13-h100.md) one tile was faster everywhere:
// bf16 decode at batch 2 / 4 / 8, ctx 512, 5.43 / 5.71 / 6.13 ms against 5.77 / 6.01 / 6.48
// (85.7 / 84.7 / 84.8% of the roofline against 80.2-80.5%), FP8 equal at batch 1 and 1-2% faster
// at 2-8.
int gemv_small_rt() {
  return fg_knob_int(FG_KNOB_GEMV_ROWS) == 32 ? 2 : 1;
}

bool gemv_small_staged() {
  static const bool v = fg_knob_int(FG_KNOB_GEMV_STAGED) == 1;
  return v;
}

int gemv_small_persist() {
  static const int v = fg_knob_int(FG_KNOB_GEMV_PERSIST);
  return v > 0 ? v : 0;
}

void gemv_small_rope(const bf16 *x, const bf16 *w, const RopeArgs &rp, int M, int N, int K, cudaStream_t s,
                     const DeferredNorm &dn) {
  launch_gemv_small_rope(Bf16Rows{w, K}, x, rp, M, N, K, dn, s);
}

void gemv_small(const bf16 *x, const bf16 *w, void *y, bool y_f32, bool acc, int M, int N, int K,
                cudaStream_t s, const DeferredNorm &dn) {
  launch_gemv_small<Bf16Rows, -1>(Bf16Rows{w, K}, x, y, nullptr, y_f32, acc, M, N, K, gemv_small_rt(), s, RmsRows(), dn);
}

bool gemv_small_rms_fits(int M, int K) {
  return M >= 1 && M <= kGemvSmallRmsMaxM && K % 8 == 0 && gemv_small_rms_bytes(M, K) <= kGemvSmallRmsMaxBytes;
}

void gemv_small_rms(const RmsRows &x, const bf16 *w, bf16 *y, int M, int N, int K, cudaStream_t s) {
  launch_gemv_small<Bf16Rows, -1, true>(Bf16Rows{w, K}, nullptr, y, nullptr, false, false, M, N, K, gemv_small_rt(), s, x);
}

void gemv_small_rms_gated(const RmsRows &x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N,
                          int K, cudaStream_t s) {
  const Bf16Rows wl{w, K};
  const int rt = gemv_small_rt();
  if (act == 0) launch_gemv_small<Bf16Rows, 0, true>(wl, nullptr, y, bias, false, false, M, N, K, rt, s, x);
  else if (act == 1) launch_gemv_small<Bf16Rows, 1, true>(wl, nullptr, y, bias, false, false, M, N, K, rt, s, x);
  else launch_gemv_small<Bf16Rows, 2, true>(wl, nullptr, y, bias, false, false, M, N, K, rt, s, x);
}

void gemv_small_gated(const bf16 *x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N,
                      int K, cudaStream_t s, const DeferredNorm &dn) {
  const Bf16Rows wl{w, K};
  const int rt = gemv_small_rt();
  const RmsRows none;
  if (act == 0) launch_gemv_small<Bf16Rows, 0>(wl, x, y, bias, false, false, M, N, K, rt, s, none, dn);
  else if (act == 1) launch_gemv_small<Bf16Rows, 1>(wl, x, y, bias, false, false, M, N, K, rt, s, none, dn);
  else launch_gemv_small<Bf16Rows, 2>(wl, x, y, bias, false, false, M, N, K, rt, s, none, dn);
}

}  // namespace fgcu
