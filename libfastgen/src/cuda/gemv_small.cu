// The small-M tensor-core GEMV (gemv_small.cuh) on bf16 weights: gemm() and gemv_gated() send
// 2 <= M <= 16 here (gemm.cu), gemv_rms() and gemv_rms_gated() the same with the norm folded in.
#include "cuda/gemv_small.cuh"

namespace fgcu {
namespace {

// SMs of the current device (per device, cached).
int sm_count() {
  static int sms[64];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) dev = 0;
  if (!sms[dev]) {
    int n = 0;
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    sms[dev] = n > 0 ? n : 132;
  }
  return sms[dev];
}

}  // namespace

int gemv_small_rt(int N) {
  const int forced = fg_knob_int(FG_KNOB_GEMV_ROWS);
  if (forced == 16 || forced == 32) return forced / 16;
  return N >= 32 * 2 * sm_count() ? 2 : 1;
}

void gemv_small(const bf16 *x, const bf16 *w, void *y, bool y_f32, bool acc, int M, int N, int K,
                cudaStream_t s) {
  launch_gemv_small<Bf16Rows, -1>(Bf16Rows{w, K}, x, y, nullptr, y_f32, acc, M, N, K, gemv_small_rt(N), s);
}

bool gemv_small_rms_fits(int M, int K) {
  return M >= 1 && M <= kGemvSmallRmsMaxM && K % 8 == 0 && gemv_small_rms_bytes(M, K) <= kGemvSmallRmsMaxBytes;
}

void gemv_small_rms(const RmsRows &x, const bf16 *w, bf16 *y, int M, int N, int K, cudaStream_t s) {
  launch_gemv_small<Bf16Rows, -1, true>(Bf16Rows{w, K}, nullptr, y, nullptr, false, false, M, N, K, gemv_small_rt(N), s, x);
}

void gemv_small_rms_gated(const RmsRows &x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N,
                          int K, cudaStream_t s) {
  const Bf16Rows wl{w, K};
  const int rt = gemv_small_rt(N);
  if (act == 0) launch_gemv_small<Bf16Rows, 0, true>(wl, nullptr, y, bias, false, false, M, N, K, rt, s, x);
  else if (act == 1) launch_gemv_small<Bf16Rows, 1, true>(wl, nullptr, y, bias, false, false, M, N, K, rt, s, x);
  else launch_gemv_small<Bf16Rows, 2, true>(wl, nullptr, y, bias, false, false, M, N, K, rt, s, x);
}

void gemv_small_gated(const bf16 *x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N,
                      int K, cudaStream_t s) {
  const Bf16Rows wl{w, K};
  const int rt = gemv_small_rt(N);
  if (act == 0) launch_gemv_small<Bf16Rows, 0>(wl, x, y, bias, false, false, M, N, K, rt, s);
  else if (act == 1) launch_gemv_small<Bf16Rows, 1>(wl, x, y, bias, false, false, M, N, K, rt, s);
  else launch_gemv_small<Bf16Rows, 2>(wl, x, y, bias, false, false, M, N, K, rt, s);
}

}  // namespace fgcu
