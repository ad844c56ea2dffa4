// Runs the FP8 E4M3 weight-streaming GEMVs on emu.h's CPU model of CUDA against a
// double-precision GEMM of the dequantized weights, per-row scales and per-K-block scales, plain
// and gated:
//   default            the small-M tensor-core kernel (cuda/fp8_gemv_small.cu's loaders in
//                      cuda/gemv_small.cuh; on an H100 every FP8 decode at 1-8 tokens), 1-16 tokens;
//                      row scales: weights widened to bf16 exactly, the scale on the fp32 sums;
//                      K-block scales: each weight times its scale rounded to bf16. Its loader
//                      follows FASTGEN_FP8_SMALL_KDEPTH (16-byte loads by default, or 8);
//   FP8_EMU_KERNEL=gemv the CUDA-core GEMV (cuda/fp8_gemv.cu; an H200's FP8 decode at one token),
//                      1-8 tokens (the cases with more print as not its shape).
//   fp8_gemv_emu [name-substring]
#include <stdio.h>
#include <stdlib.h>

#include <cuda_fp8.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/fp8_gemv.cuh"
#include "gemvCheck.h"

namespace {

typedef __nv_bfloat16 bf16;

struct Case {
  const char *name;
  int M, N, K, kblock;  // kblock 0: one scale a row
  int mode;             // 0 bf16 out, 1 fp32 out, 2 fp32 accumulated, 3 gated silu
};

const std::vector<Case> kCases = {
    {"row scales, M 1, N 48, K 256, bf16 out", 1, 48, 256, 0, 0},
    {"row scales, M 1, N 37 (a partial tile), K 208, fp32 accumulated", 1, 37, 208, 0, 2},
    {"row scales, M 8, N 64, K 528, fp32 out", 8, 64, 528, 0, 1},
    {"row scales, M 16, N 40, K 144, bf16 out", 16, 40, 144, 0, 0},
    {"row scales, gated silu, M 3, N 64, K 272", 3, 64, 272, 0, 3},
    {"128-k blocks, M 2, N 33, K 400, fp32 out", 2, 33, 400, 128, 1},
    {"16-k blocks, M 5, N 40, K 96, fp32 accumulated", 5, 40, 96, 16, 2},
    {"48-k blocks, gated silu, M 1, N 34, K 192", 1, 34, 192, 48, 3},
};

const bool kGemv = getenv("FP8_EMU_KERNEL") && std::string(getenv("FP8_EMU_KERNEL")) == "gemv";

void fp8_gemm(const bf16 *x, const fgcu::Weight &w, void *y, bool y_f32, bool acc, int act, int M, int N, int K) {
  if (kGemv) fgcu::fp8_gemv_launch(x, w, y, y_f32, acc, act, nullptr, M, N, K, nullptr);
  else fgcu::fp8_gemv_small(x, w, y, y_f32, acc, act, nullptr, M, N, K, nullptr);
}

bool run(const Case &c, std::mt19937 &rng) {
  if (kGemv && c.M > fgcu::kFp8GemvMaxRows) {
    printf("ok %s: not a GEMV shape (more than %d tokens)\n", c.name, fgcu::kFp8GemvMaxRows);
    return true;
  }
  const int M = c.M, N = c.N, K = c.K, kblock = c.kblock ? c.kblock : K, nkb = (K + kblock - 1) / kblock;
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<bf16> x((size_t)M * K);
  for (auto &v : x) v = __float2bfloat16_rn(nd(rng));
  std::vector<uint8_t> q((size_t)N * K);
  std::vector<float> scales((size_t)N * nkb), deq((size_t)N * K);
  for (auto &s : scales) s = 0.002f * (1.f + (float)(rng() % 1000) / 1000.f);
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) {
      // E4M3 of every magnitude, subnormals and zeros included
      const float v = nd(rng) * 40.f * ((rng() % 8) == 0 ? 0.01f : 1.f);
      q[(size_t)n * K + k] = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
      const __half_raw h = __nv_cvt_fp8_to_halfraw(q[(size_t)n * K + k], __NV_E4M3);
      deq[(size_t)n * K + k] = __half2float(__half(h)) * scales[(size_t)n * nkb + k / kblock];
    }
  fgcu::Weight w;
  w.p = q.data(), w.dtype = fgcu::kWeightFp8, w.kblock = kblock, w.scales = scales.data(), w.weight_only = true;
  const gemv_check::Ref ref = gemv_check::reference(x.data(), deq.data(), M, N, K);
  // The small-M kernel rounds each weight times its K-block scale to bf16 (2^-9 relative); its row
  // scales, and the GEMV's scales of either kind, multiply fp32 sums.
  const double wrel = c.kblock && !kGemv ? 0x1p-8 : 0.0;
  gemv_check::Worst e;
  if (c.mode < 3) {
    std::vector<float> yf((size_t)M * N, 0.25f);
    std::vector<bf16> yb((size_t)M * N, __float2bfloat16_rn(NAN));
    if (c.mode == 0) fp8_gemm(x.data(), w, yb.data(), false, false, -1, M, N, K);
    else fp8_gemm(x.data(), w, yf.data(), true, c.mode == 2, -1, M, N, K);
    for (size_t i = 0; i < ref.dot.size(); i++)
      e.plain(c.mode == 0 ? __bfloat162float(yb[i]) : yf[i], ref.dot[i] + (c.mode == 2 ? 0.25 : 0.0), ref.mag[i], wrel, c.mode == 0);
  } else {
    const int half = N / 2;
    std::vector<bf16> y((size_t)M * half, __float2bfloat16_rn(NAN));
    fp8_gemm(x.data(), w, y.data(), false, false, 0, M, N, K);
    for (int m = 0; m < M; m++)
      for (int i = 0; i < half; i++) {
        const size_t g = (size_t)m * N + 2 * i, u = g + 1;
        e.gated(__bfloat162float(y[(size_t)m * half + i]), 0, ref.dot[g], ref.dot[u], ref.mag[g], ref.mag[u], wrel);
      }
  }
  return e.report(c.name);
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 777, argc, argv); }
