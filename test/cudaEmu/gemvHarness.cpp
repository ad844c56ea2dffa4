// Runs the one-token bf16 GEMVs (cuda/gemm.cu: the narrow kernel, pipelined or not, for N < 8192,
// the two-rows-a-warp kernel for N >= 8192, and its gated form) through gemm() and gemv_gated() on
// emu.h's CPU model of CUDA, against a double-precision GEMV of the same bf16 values: bf16, fp32
// and accumulated outputs, rows that do and do not fill a block, K of whole and partial rounds.
// FASTGEN_GEMV_PIPE (read once a process) picks the narrow kernel; the test runs both. Under
// FASTGEN_NORM_DEFER=1, the two-row kernel with x an RMSNorm row whose scale it applies at the end
// (gemv_rms_deferred), plain and gated, against the norm and GEMV in double.
//   gemv_emu [name-substring]
#include <stdio.h>
#include <stdlib.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/gemm.cuh"
#include "gemvCheck.h"

namespace {

typedef __nv_bfloat16 bf16;

struct Case {
  const char *name;
  int N, K;
  int mode;  // 0 bf16 out, 1 fp32 out, 2 fp32 accumulated, 3 gated silu + bias, 4 gated gelu-tanh,
             // x an RMSNorm row with its scale deferred (FASTGEN_NORM_DEFER): 5 bf16 out, 6 gated silu + bias
};

const std::vector<Case> kCases = {
    {"narrow: N 4096, K 4096 (the 7B o shape, two rounds), fp32 accumulated", 4096, 4096, 2},
    {"narrow: N 37, K 2056 (a partial last round), bf16 out", 37, 2056, 0},
    {"narrow: N 100, K 64, fp32 out", 100, 64, 1},
    {"wide: N 8200, K 1096 (a partial 4-load step), fp32 out", 8200, 1096, 1},
    {"wide: N 8193 (a lone last row), K 256, bf16 out", 8193, 256, 0},
    {"wide: N 12288, K 512, fp32 accumulated", 12288, 512, 2},
    {"gated silu + bias: N 22016 (the 7B gate_up rows), K 136", 22016, 136, 3},
    {"gated gelu-tanh: N 64, K 1032", 64, 1032, 4},
    {"deferred RMSNorm: N 8200, K 1096, bf16 out", 8200, 1096, 5},
    {"deferred RMSNorm, gated silu + bias: N 2048, K 4096 (the 7B width)", 2048, 4096, 6},
};

// Modes 5 and 6: gemv_rms_deferred against y = rmsnorm(h) * w_norm . W in double.
bool run_deferred(const Case &c, std::mt19937 &rng) {
  const int N = c.N, K = c.K;
  if (!fgcu::gemv_rms_deferred_takes(1, K)) {
    printf("ok %s: not taken (FASTGEN_NORM_DEFER unset)\n", c.name);
    return true;
  }
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> h(K), wn(K), bias(N);
  for (auto &v : h) v = 3.f * nd(rng);
  for (auto &v : wn) v = 1.f + 0.3f * u(rng);
  for (auto &v : bias) v = nd(rng) * 0.1f;
  std::vector<bf16> w((size_t)N * K);
  for (auto &v : w) v = __float2bfloat16_rn(nd(rng) * 0.1f);
  const float eps = 1e-5f;
  double ss = 0;
  for (float v : h) ss += (double)v * v;
  const double r = 1.0 / sqrt(ss / K + eps);
  std::vector<double> dot(N), mag(N);
  for (int n = 0; n < N; n++) {
    double s = 0, a = 0;
    for (int k = 0; k < K; k++) {
      const double p = h[k] * r * wn[k] * (double)__bfloat162float(w[(size_t)n * K + k]);
      s += p, a += fabs(p);
    }
    dot[n] = s, mag[n] = a;
  }
  const bool gated = c.mode == 6;
  std::vector<bf16> y(gated ? N / 2 : N, __float2bfloat16_rn(NAN));
  char err[512] = "";
  if (fgcu::gemv_rms_deferred({h.data(), wn.data(), eps}, w.data(), gated ? bias.data() : nullptr, gated ? 0 : -1, y.data(), 1, N, K,
                              nullptr, err)) {
    printf("FAIL %s: %s\n", c.name, err);
    return false;
  }
  gemv_check::Worst e;
  if (!gated)
    for (int n = 0; n < N; n++) e.plain(__bfloat162float(y[n]), dot[n], mag[n], 0, true);
  else
    for (int i = 0; i < N / 2; i++)
      e.gated(__bfloat162float(y[i]), 0, dot[2 * i] + bias[2 * i], dot[2 * i + 1] + bias[2 * i + 1], mag[2 * i], mag[2 * i + 1], 0);
  return e.report(c.name);
}

bool run(const Case &c, std::mt19937 &rng) {
  if (c.mode >= 5) return run_deferred(c, rng);
  const int N = c.N, K = c.K;
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<bf16> x(K), w((size_t)N * K);
  for (auto &v : x) v = __float2bfloat16_rn(nd(rng));
  for (auto &v : w) v = __float2bfloat16_rn(nd(rng) * 0.1f);
  std::vector<float> bias(N);
  for (auto &v : bias) v = nd(rng) * 0.1f;
  const gemv_check::Ref ref = gemv_check::reference(x.data(), gemv_check::floats(w).data(), 1, N, K);
  gemv_check::Worst e;
  char err[512] = "";
  if (c.mode < 3) {
    std::vector<float> yf(N, -0.5f);
    std::vector<bf16> yb(N, __float2bfloat16_rn(NAN));
    const int rc = c.mode == 0 ? fgcu::gemm(nullptr, x.data(), w.data(), yb.data(), false, false, 1, N, K, nullptr, err)
                               : fgcu::gemm(nullptr, x.data(), w.data(), yf.data(), true, c.mode == 2, 1, N, K, nullptr, err);
    if (rc) {
      printf("FAIL %s: %s\n", c.name, err);
      return false;
    }
    for (int n = 0; n < N; n++)
      e.plain(c.mode == 0 ? __bfloat162float(yb[n]) : yf[n], ref.dot[n] + (c.mode == 2 ? -0.5 : 0.0), ref.mag[n], 0, c.mode == 0);
  } else {
    const int kind = c.mode == 3 ? 0 : 2, half = N / 2;
    const bool with_bias = c.mode == 3;
    std::vector<bf16> y(half, __float2bfloat16_rn(NAN));
    if (!fgcu::gemv_gated(x.data(), w.data(), with_bias ? bias.data() : nullptr, kind, y.data(), 1, N, K, nullptr)) {
      printf("FAIL %s: gemv_gated refused it\n", c.name);
      return false;
    }
    for (int i = 0; i < half; i++) {
      const double gate = ref.dot[2 * i] + (with_bias ? bias[2 * i] : 0.f), up = ref.dot[2 * i + 1] + (with_bias ? bias[2 * i + 1] : 0.f);
      e.gated(__bfloat162float(y[i]), kind, gate, up, ref.mag[2 * i], ref.mag[2 * i + 1], 0);
    }
  }
  return e.report(c.name);
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 99, argc, argv); }
