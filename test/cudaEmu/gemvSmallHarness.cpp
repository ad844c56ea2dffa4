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
#include "gemvCheck.h"

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

bool run(const Case &c, std::mt19937 &rng) {
  const int M = c.M, N = c.N, K = c.K;
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<bf16> x((size_t)M * K), w((size_t)N * K);
  for (auto &v : x) v = __float2bfloat16_rn(nd(rng));
  for (auto &v : w) v = __float2bfloat16_rn(nd(rng) * 0.1f);
  std::vector<float> bias(N);
  for (auto &v : bias) v = nd(rng) * 0.1f;
  const gemv_check::Ref ref = gemv_check::reference(x.data(), gemv_check::floats(w).data(), M, N, K);
  gemv_check::Worst e;
  const int gated = c.mode >= 3;
  if (!gated) {
    std::vector<float> yf((size_t)M * N, 0.5f);  // accumulated into: starts at 0.5
    std::vector<bf16> yb((size_t)M * N, __float2bfloat16_rn(NAN));
    if (c.mode == 0) fgcu::gemv_small(x.data(), w.data(), yb.data(), false, false, M, N, K, nullptr);
    else fgcu::gemv_small(x.data(), w.data(), yf.data(), true, c.mode == 2, M, N, K, nullptr);
    for (size_t i = 0; i < ref.dot.size(); i++)
      e.plain(c.mode == 0 ? __bfloat162float(yb[i]) : yf[i], ref.dot[i] + (c.mode == 2 ? 0.5 : 0.0), ref.mag[i], 0, c.mode == 0);
  } else {
    const int half = N / 2, kind = c.mode - 3;
    std::vector<bf16> y((size_t)M * half, __float2bfloat16_rn(NAN));
    fgcu::gemv_small_gated(x.data(), w.data(), c.bias ? bias.data() : nullptr, kind, y.data(), M, N, K, nullptr);
    for (int m = 0; m < M; m++)
      for (int i = 0; i < half; i++) {
        const size_t g = (size_t)m * N + 2 * i, u = g + 1;
        const double gate = ref.dot[g] + (c.bias ? bias[2 * i] : 0.f), up = ref.dot[u] + (c.bias ? bias[2 * i + 1] : 0.f);
        e.gated(__bfloat162float(y[(size_t)m * half + i]), kind, gate, up, ref.mag[g], ref.mag[u], 0);
      }
  }
  return e.report(c.name);
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 1234, argc, argv); }
