// Runs the small-M GEMV with RoPE and the K/V write in its epilogue (cuda/gemv_small.cuh
// launch_gemv_small_rope, through gemv_small_rope and fp8_gemv_small_rope) on emu.h's CPU model
// of CUDA against the two kernels it stands in for -- the small-M GEMV writing qkv [M, N] in bf16
// (gemv_small / fp8_gemv_small), then the RoPE kernel (qkv_rope_kv_write: bias, rotation, q back
// into qkv, K/V to their cache slots) -- on the same inputs, and asks for the same bits: the q
// columns of every token's qkv row and the whole K and V pools. Tokens of up to three sequences at
// scattered positions (decode rows and a prompt chunk), bf16 and FP8 weights (per-row and
// per-K-block scales), x as normalized rows or as a deferred norm's bf16(h * w) with its partial
// sums (dn.part: the same sums, scaled in the epilogue either way). FASTGEN_QKV_ROPE must be 1
// or 2; FASTGEN_GEMV_PERSIST may be set (3: every block loops over several tiles).
//   rope_small_emu [name-substring]
#include <stdio.h>
#include <stdlib.h>

#include <cuda_fp8.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/fp8_gemv.cuh"
#include "cuda/gemv_small.cuh"
#include "cuda/rope.cuh"
#include "ropeCheck.h"

namespace {

typedef __nv_bfloat16 bf16;

struct Case {
  const char *name;
  int M, nh, nkv, hd, rot, K, bs;
  bool interleaved, bias, kv_fp8;
  int weights;  // 0 bf16, 1 FP8 per-row scales, 2 FP8 per-K-block scales (128 k)
  bool deferred;
};

const std::vector<Case> kCases = {
    {"M 2, GQA 8/2 hd 128, K 256, bf16", 2, 8, 2, 128, 128, 256, 16, false, false, false, 0, false},
    {"M 16 (two 8-token columns), MHA 4/4 hd 64, biases, block 7, bf16", 16, 4, 4, 64, 64, 192, 7, false, true, false, 0, false},
    {"M 5, partial rotary 32 of hd 64, FP8 cache, bf16", 5, 4, 2, 64, 32, 128, 16, false, true, true, 0, false},
    {"M 3, interleaved pairs, hd 32, bf16, deferred norm", 3, 2, 2, 32, 32, 96, 4, true, false, false, 0, true},
    {"M 1, GQA 8/2 hd 128, K 512, FP8 row scales", 1, 8, 2, 128, 128, 512, 16, false, false, false, 1, false},
    {"M 7, hd 64, biases, FP8 cache, FP8 row scales, deferred norm", 7, 4, 2, 64, 64, 256, 16, false, true, true, 1, true},
    {"M 12, hd 16 (no rotation), FP8 128-k block scales", 12, 4, 2, 16, 0, 256, 4, false, true, false, 2, false},
};

bool run(const Case &c, std::mt19937 &rng) {
  const int M = c.M, bs = c.bs, K = c.K;
  // Tokens of three sequences: sequence m % 3 at position 37 m + 5 (a block table each, shuffled).
  const int nseq = 3, max_pos = 37 * M + 5, per_seq = max_pos / bs + 1;
  std::vector<int> positions(M), token_seq(M), indptr(nseq + 1), blocks((size_t)nseq * per_seq);
  for (int s = 0; s <= nseq; s++) indptr[s] = s * per_seq;
  for (size_t i = 0; i < blocks.size(); i++) blocks[i] = (int)i;
  std::shuffle(blocks.begin(), blocks.end(), rng);
  for (int m = 0; m < M; m++) positions[m] = 37 * m + 5, token_seq[m] = m % nseq;
  rope_check::Layer L(c.nh, c.nkv, c.hd, c.rot, bs, c.interleaved, c.kv_fp8, c.bias, (int)blocks.size(), rng);
  L.positions = positions.data(), L.token_seq = token_seq.data(), L.indptr = indptr.data(), L.blocks = blocks.data();
  const int N = L.width();
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<bf16> x((size_t)M * K), w((size_t)N * K);
  for (auto &v : x) v = __float2bfloat16_rn(nd(rng));
  for (auto &v : w) v = __float2bfloat16_rn(nd(rng) * 0.05f);
  // FP8: E4M3 bytes of w / scale, the scales per row or per 128-k block
  const int kblock = c.weights == 2 ? 128 : 0, nkb = kblock ? (K + kblock - 1) / kblock : 1;
  std::vector<uint8_t> w8((size_t)N * K);
  std::vector<float> scales((size_t)N * nkb);
  for (auto &s : scales) s = 0.002f * (1.f + (float)(rng() % 1000) / 1000.f);
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) {
      const float s = scales[(size_t)n * nkb + (kblock ? k / kblock : 0)];
      w8[(size_t)n * K + k] = (uint8_t)__nv_cvt_float_to_fp8(__bfloat162float(w[(size_t)n * K + k]) / s, __NV_SATFINITE, __NV_E4M3);
    }
  fgcu::Weight wt;
  wt.p = w8.data(), wt.dtype = fgcu::kWeightFp8, wt.kblock = kblock, wt.scales = scales.data(), wt.weight_only = true;
  // A deferred norm: x holds bf16(h * w) and part the per-16-row-block sums of h^2 (values made up:
  // both paths read the same ones).
  const int parts = fgcu::deferred_norm_blocks(K);
  std::vector<float> part((size_t)parts * fgcu::kDeferredNormMaxM);
  for (auto &v : part) v = 16.f * (1.f + u(rng) * 0.5f);
  fgcu::DeferredNorm dn;
  if (c.deferred) dn = {part.data(), parts, 1e-5f};
  rope_check::Run A(L, M), B(L, M);
  char err[512] = "";
  const fgcu::RopeArgs ra = rope_check::args(L, A), rb = rope_check::args(L, B);
  if (!fgcu::qkv_rope_fusable(rb, N, K)) {
    printf("FAIL %s: the qkv does not take RoPE (FASTGEN_QKV_ROPE unset?)\n", c.name);
    return false;
  }
  if (c.weights == 0) {
    fgcu::gemv_small(x.data(), w.data(), A.qkv.data(), false, false, M, N, K, nullptr, dn);
    fgcu::gemv_small_rope(x.data(), w.data(), rb, M, N, K, nullptr, dn);
  } else {
    fgcu::fp8_gemv_small(x.data(), wt, A.qkv.data(), false, false, -1, nullptr, M, N, K, nullptr, dn);
    fgcu::fp8_gemv_small_rope(x.data(), wt, rb, M, N, K, nullptr, dn);
  }
  if (fgcu::qkv_rope_kv_write(ra, M, nullptr, err)) {
    printf("FAIL %s: %s\n", c.name, err);
    return false;
  }
  return rope_check::same(c.name, L, M, K, A, B);
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 1357, argc, argv); }
