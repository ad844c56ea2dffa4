// Runs the small-M tensor-core GEMV (cuda/gemv_small.cuh through cuda/gemv_small.cu's bf16 entry
// points) on emu.h's CPU model of CUDA and checks it against a double-precision GEMM of the same
// bf16 values, at 1-16 tokens (the engine sends it 2-16 since FASTGEN_GEMV_MAX_M became 16; one
// with FASTGEN_GEMV_SMALL_AT_1), for N and K that do and do not fill its 16-row tiles and 32-k
// steps: plain with bf16 or fp32 outputs, fp32 accumulated into, and gated (silu / gelu /
// gelu-tanh of gate + bias, times up + bias, rows interleaved gate_i, up_i).
//   gemv_small_emu [name-substring]
#include <stdio.h>
#include <stdlib.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/gemv_small.cuh"

namespace {

typedef __nv_bfloat16 bf16;

struct Case {
  const char *name;
  int M, N, K;
  int mode;  // 0 bf16 out, 1 fp32 out, 2 fp32 accumulated, 3.. gated with act mode - 3
  bool bias;
};

const std::vector<Case> kCases = {
    {"M 16, N 64, K 256, bf16 out", 16, 64, 256, 0, false},
    {"M 16, N 40 (a partial tile), K 200 (a partial step), fp32 out", 16, 40, 200, 1, false},
    {"M 9, N 48, K 520, fp32 accumulated", 9, 48, 520, 2, false},
    {"M 13, N 100, K 136, bf16 out", 13, 100, 136, 0, false},
    {"M 8, N 32, K 264, fp32 out (one 8-token column)", 8, 32, 264, 1, false},
    {"M 1, N 37, K 64, fp32 accumulated", 1, 37, 64, 2, false},
    {"M 3, N 130, K 1032, bf16 out (steps spread over all 8 warps)", 3, 130, 1032, 0, false},
    {"gated silu, M 16, N 64 (32 pairs), K 96, bias", 16, 64, 96, 3, true},
    {"gated gelu, M 12, N 40, K 256", 12, 40, 256, 4, false},
    {"gated gelu-tanh, M 5, N 34, K 72, bias", 5, 34, 72, 5, true},
};

float act_of(int kind, float x) {
  switch (kind) {
    case 0: return x / (1.f + expf(-x));
    case 1: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    default: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  }
}

bool run(const Case &c, std::mt19937 &rng) {
  const int M = c.M, N = c.N, K = c.K;
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<bf16> x((size_t)M * K), w((size_t)N * K);
  for (auto &v : x) v = __float2bfloat16_rn(nd(rng));
  for (auto &v : w) v = __float2bfloat16_rn(nd(rng) * 0.1f);
  std::vector<float> bias(N);
  for (auto &v : bias) v = nd(rng) * 0.1f;
  // Reference dot products (double) and their scale (sum of |x w|) for the tolerance.
  std::vector<double> dot((size_t)M * N), mag((size_t)M * N);
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = 0, a = 0;
      for (int k = 0; k < K; k++) {
        const double p = (double)__bfloat162float(x[(size_t)m * K + k]) * __bfloat162float(w[(size_t)n * K + k]);
        s += p, a += fabs(p);
      }
      dot[(size_t)m * N + n] = s, mag[(size_t)m * N + n] = a;
    }
  double worst = 0;  // error / allowed, over every output
  bool nan = false;
  auto check = [&](double got, double want, double allowed) {
    nan |= std::isnan(got);
    worst = std::max(worst, fabs(got - want) / allowed);
  };
  const int gated = c.mode >= 3;
  if (!gated) {
    std::vector<float> yf((size_t)M * N, 0.5f);  // accumulated into: starts at 0.5
    std::vector<bf16> yb((size_t)M * N, __float2bfloat16_rn(NAN));
    if (c.mode == 0) fgcu::gemv_small(x.data(), w.data(), yb.data(), false, false, M, N, K, nullptr);
    else fgcu::gemv_small(x.data(), w.data(), yf.data(), true, c.mode == 2, M, N, K, nullptr);
    for (size_t i = 0; i < dot.size(); i++) {
      const double want = dot[i] + (c.mode == 2 ? 0.5 : 0.0);
      if (c.mode == 0) check(__bfloat162float(yb[i]), want, 1e-5 * mag[i] + fabs(want) * 0x1p-8 + 1e-6);
      else check(yf[i], want, 1e-5 * mag[i] + 1e-6);
    }
  } else {
    const int half = N / 2, kind = c.mode - 3;
    std::vector<bf16> y((size_t)M * half, __float2bfloat16_rn(NAN));
    fgcu::gemv_small_gated(x.data(), w.data(), c.bias ? bias.data() : nullptr, kind, y.data(), M, N, K, nullptr);
    for (int m = 0; m < M; m++)
      for (int i = 0; i < half; i++) {
        const size_t g = (size_t)m * N + 2 * i, u = g + 1;
        const double gate = dot[g] + (c.bias ? bias[2 * i] : 0.f), up = dot[u] + (c.bias ? bias[2 * i + 1] : 0.f);
        const double want = act_of(kind, (float)gate) * up;
        // the sums' error carried through act (slope <= ~1.13) and the product, then bf16 rounding
        const double allowed = 1e-5 * (mag[g] * fabs(up) * 1.2 + mag[u] * (fabs(gate) + 1.0)) + fabs(want) * 0x1p-8 + 1e-6;
        check(__bfloat162float(y[(size_t)m * half + i]), want, allowed);
      }
  }
  const bool ok = !nan && worst <= 1.0;
  printf("%s %s: worst error %.3g of its bound%s\n", ok ? "ok" : "FAIL", c.name, worst, nan ? ", NaN in the output" : "");
  return ok;
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 1234, argc, argv); }
