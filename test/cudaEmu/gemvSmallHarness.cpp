// Runs the small-M tensor-core GEMV (cuda/gemv_small.cuh through cuda/gemv_small.cu's bf16 entry
// points) on emu.h's CPU model of CUDA and checks it against a double-precision GEMM of the same
// bf16 values, at 1-16 tokens (the engine sends it 2-16 since FASTGEN_GEMV_MAX_M became 16; one
// with FASTGEN_GEMV_SMALL_AT_1), for N and K that do and do not fill its 16-row tiles and 32-k
// steps: plain with bf16 or fp32 outputs, fp32 accumulated into, and gated (silu / gelu /
// gelu-tanh of gate + bias, times up + bias, rows interleaved gate_i, up_i). And an RMSNorm
// deferred between two of them (rms_fold.cuh DeferredNorm, FASTGEN_NORM_DEFER): the first adds to
// fp32 residual rows h and writes x = bf16(h * w) and its blocks' sums of h^2, the second (plain
// or gated) reads them and must give rsqrt(mean(h^2) + eps) times its dot products with that x.
//   gemv_small_emu [name-substring]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  int mode;  // 0 bf16 out, 1 fp32 out, 2 fp32 accumulated, 3.. 5 gated with act mode - 3,
             // 6 a deferred norm written into h [M, N], then read by a GEMV of N2 rows (bf16 out),
             // 7 the same read by a gated one (silu, N2 / 2 pairs)
  bool bias;
  int N2 = 0;
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
    {"deferred norm, M 1, h 4096 wide (K 1024), read by N 96", 1, 4096, 1024, 6, false, 96},
    {"deferred norm, M 6, h 200 wide (a partial block), read by N 40", 6, 200, 136, 6, false, 40},
    {"deferred norm, M 16, h 256 wide (K 64), read gated by N 64, bias", 16, 256, 64, 7, true, 64},
    {"deferred norm, M 11, h 1032 wide, read gated by N 34", 11, 1032, 264, 7, false, 34},
};

// Mode 6 / 7: h += x w^T writing the deferred norm, then a GEMV reading it.
bool run_deferred(const Case &c, std::mt19937 &rng) {
  const int M = c.M, N = c.N, K = c.K, N2 = c.N2;
  const float eps = 1e-5f;
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<bf16> x((size_t)M * K), w((size_t)N * K), w2((size_t)N2 * N);
  for (auto &v : x) v = __float2bfloat16_rn(nd(rng));
  for (auto &v : w) v = __float2bfloat16_rn(nd(rng) * 0.1f);
  for (auto &v : w2) v = __float2bfloat16_rn(nd(rng) * 0.1f);
  std::vector<float> h((size_t)M * N), h0, wn(N), bias(N2);
  for (auto &v : h) v = nd(rng) * 3.f;
  for (auto &v : wn) v = 1.f + nd(rng) * 0.2f;
  for (auto &v : bias) v = nd(rng) * 0.1f;
  h0 = h;
  const int nb = fgcu::deferred_norm_blocks(N);
  std::vector<bf16> xo((size_t)M * N, __float2bfloat16_rn(NAN));
  std::vector<float> part((size_t)nb * fgcu::kDeferredNormMaxM, NAN);
  fgcu::DeferredNorm wr;
  wr.x_out = xo.data(), wr.w_next = wn.data(), wr.part_out = part.data();
  fgcu::gemv_small(x.data(), w.data(), h.data(), true, true, M, N, K, nullptr, wr);
  // The writer: h as an accumulated GEMM, x exactly bf16(h * w) of the h it wrote, sums of h^2.
  const gemv_check::Ref ref = gemv_check::reference(x.data(), gemv_check::floats(w).data(), M, N, K);
  gemv_check::Worst e;
  bool exact = true;
  for (size_t i = 0; i < h.size(); i++) {
    e.plain(h[i], h0[i] + ref.dot[i], ref.mag[i] + fabs(h0[i]), 0, false);
    const bf16 want = __float2bfloat16_rn(h[i] * wn[i % N]);
    exact &= memcmp(&want, &xo[i], sizeof want) == 0;
  }
  std::vector<double> scale(M);
  for (int m = 0; m < M; m++) {
    double ss = 0;
    for (int b = 0; b < nb; b++) {
      double want = 0;
      for (int n = 16 * b; n < std::min(N, 16 * b + 16); n++) want += (double)h[(size_t)m * N + n] * h[(size_t)m * N + n];
      e.check(part[(size_t)b * fgcu::kDeferredNormMaxM + m], want, want * 1e-6 + 1e-30);
      ss += want;
    }
    scale[m] = 1.0 / sqrt(ss / N + eps);
  }
  if (!exact) printf("FAIL %s: x is not bf16(h * w)\n", c.name);
  // The reader: its sums times the norm's scale, against x as written.
  fgcu::DeferredNorm rd;
  rd.part = part.data(), rd.nb = nb, rd.eps = eps;
  const gemv_check::Ref r2 = gemv_check::reference(xo.data(), gemv_check::floats(w2).data(), M, N2, N);
  if (c.mode == 6) {
    std::vector<bf16> y((size_t)M * N2, __float2bfloat16_rn(NAN));
    fgcu::gemv_small(xo.data(), w2.data(), y.data(), false, false, M, N2, N, nullptr, rd);
    for (size_t i = 0; i < y.size(); i++) e.plain(__bfloat162float(y[i]), r2.dot[i] * scale[i / N2], r2.mag[i] * scale[i / N2], 0, true);
  } else {
    const int half = N2 / 2;
    std::vector<bf16> y((size_t)M * half, __float2bfloat16_rn(NAN));
    fgcu::gemv_small_gated(xo.data(), w2.data(), c.bias ? bias.data() : nullptr, 0, y.data(), M, N2, N, nullptr, rd);
    for (int m = 0; m < M; m++)
      for (int i = 0; i < half; i++) {
        const size_t g = (size_t)m * N2 + 2 * i, u = g + 1;
        const double gate = r2.dot[g] * scale[m] + (c.bias ? bias[2 * i] : 0.f), up = r2.dot[u] * scale[m] + (c.bias ? bias[2 * i + 1] : 0.f);
        e.gated(__bfloat162float(y[(size_t)m * half + i]), 0, gate, up, r2.mag[g] * scale[m], r2.mag[u] * scale[m], 0);
      }
  }
  return e.report(c.name) && exact;
}

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
  if (c.mode >= 6) return run_deferred(c, rng);
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
