// Runs the GEMVs that write the next layer's RMSNorm from their last block (FASTGEN_NORM_NEXT,
// cuda/rms_fold.cuh RmsNext) on emu.h's CPU model of CUDA, each against the two kernels it
// replaces: the same GEMV accumulating into the residual rows h, then norm.cu's norm_rows. h and
// the bf16 x must come out equal bit for bit, and the block counter back at zero (graphs replay
// the kernel with it). Kernels: the one-token pipelined GEMV (gemm.cu gemv_norm_next, M = 1), the
// small-M kernel on bf16 weights (2-16 tokens, and one under FASTGEN_GEMV_SMALL_AT_1) and on FP8
// rows with per-row and per-K-block scales (fp8_gemv_small).
//   norm_next_emu [name-substring]      (needs FASTGEN_NORM_NEXT=16 in the environment)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_fp8.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/fp8_gemv.cuh"
#include "cuda/gemm.cuh"
#include "cuda/norm.cuh"
#include "gemvCheck.h"

namespace {

typedef __nv_bfloat16 bf16;

struct Case {
  const char *name;
  int M, N, K;  // h [M, N] += x [M, K] · w [N, K]^T
  int fp8;      // 0 bf16 weights; else FP8 with this K-block (or K: one scale a row)
};

const std::vector<Case> kCases = {
    {"bf16, M 1, N 4096, K 4096 (the 7B o shape): the one-token GEMV", 1, 4096, 4096, 0},
    {"bf16, M 1, N 136, K 1032 (a partial round)", 1, 136, 1032, 0},
    {"bf16, M 2, N 512, K 520: small-M", 2, 512, 520, 0},
    {"bf16, M 9, N 264 (a partial tile), K 200", 9, 264, 200, 0},
    {"bf16, M 16, N 1032, K 64", 16, 1032, 64, 0},
    {"fp8 row scales, M 1, N 256, K 512", 1, 256, 512, 512},
    {"fp8 row scales, M 7, N 136, K 272", 7, 136, 272, 272},
    {"fp8 128-k blocks, M 3, N 520, K 384", 3, 520, 384, 128},
};

bool same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

bool run(const Case &c, std::mt19937 &rng) {
  const int M = c.M, N = c.N, K = c.K;
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<bf16> x((size_t)M * K), w((size_t)N * K);
  for (auto &v : x) v = __float2bfloat16_rn(nd(rng));
  for (auto &v : w) v = __float2bfloat16_rn(nd(rng) * 0.05f);
  std::vector<float> h0((size_t)M * N), norm_w(N);
  for (auto &v : h0) v = nd(rng) * 2.f;
  for (auto &v : norm_w) v = 1.f + 0.1f * nd(rng);
  const float eps = 1e-5f;
  std::vector<uint8_t> q;
  std::vector<float> scales;
  fgcu::Weight fw;
  if (c.fp8) {
    const int nkb = (K + c.fp8 - 1) / c.fp8;
    q.resize((size_t)N * K), scales.resize((size_t)N * nkb);
    for (auto &s : scales) s = 0.002f * (1.f + (float)(rng() % 1000) / 1000.f);
    for (auto &v : q) v = __nv_cvt_float_to_fp8(nd(rng) * 40.f, __NV_SATFINITE, __NV_E4M3);
    fw.p = q.data(), fw.dtype = fgcu::kWeightFp8, fw.kblock = c.fp8, fw.scales = scales.data(), fw.weight_only = true;
  }
  char err[512] = "";
  // The two kernels it replaces.
  std::vector<float> ha = h0;
  std::vector<bf16> xa((size_t)M * N, __float2bfloat16_rn(NAN));
  int rc = c.fp8 ? (fgcu::fp8_gemv_small(x.data(), fw, ha.data(), true, true, -1, nullptr, M, N, K, nullptr), 0)
                 : fgcu::gemm(nullptr, x.data(), w.data(), ha.data(), true, true, M, N, K, nullptr, err);
  if (!rc) rc = fgcu::norm_rows(ha.data(), nullptr, M, N, nullptr, nullptr, true, fgcu::kNormRms, norm_w.data(), nullptr, eps,
                                xa.data(), nullptr, err);
  // The GEMV with the norm in its last block, twice: the counter must be back at zero after each.
  std::vector<float> hb = h0;
  std::vector<bf16> xb((size_t)M * N, __float2bfloat16_rn(NAN));
  int done = 0;
  fgcu::RmsNext next;
  next.w = norm_w.data(), next.eps = eps, next.x = xb.data(), next.done = &done;
  bool ok = true;
  for (int rep = 0; rep < 2 && !rc; rep++) {
    hb = h0;
    if (c.fp8) fgcu::fp8_gemv_small(x.data(), fw, hb.data(), true, true, -1, nullptr, M, N, K, nullptr, next);
    else rc = fgcu::gemv_norm_next(x.data(), w.data(), hb.data(), next, M, N, K, nullptr, err);
    if (done != 0) {
      printf("FAIL %s: the block counter is %d after launch %d, not 0\n", c.name, done, rep + 1);
      ok = false;
    }
  }
  if (rc) {
    printf("FAIL %s: %s\n", c.name, err);
    return false;
  }
  if (!same_bits(ha.data(), hb.data(), ha.size() * 4)) {
    printf("FAIL %s: h differs from the plain GEMV's\n", c.name);
    ok = false;
  }
  size_t differ = 0;
  for (size_t i = 0; i < xa.size(); i++) differ += !same_bits(&xa[i], &xb[i], 2);
  if (differ) {
    printf("FAIL %s: %zu of %zu normed values differ from norm_rows'\n", c.name, differ, xa.size());
    ok = false;
  }
  if (ok) printf("ok %s: h and x bit-identical to the GEMV + norm_rows\n", c.name);
  return ok;
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 4242, argc, argv); }
