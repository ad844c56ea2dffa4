// Runs decode's qkv GEMV with RoPE in its epilogue (cuda/rope.cu qkv_gemv_rope) on emu.h's CPU
// model of CUDA against the two kernels it stands in for -- the one-token GEMV (cuda/gemm.cu
// gemm(): the two-row kernel at N >= 8192, the narrow one below) writing qkv in bf16, then the RoPE
// kernel (qkv_rope_kv_write: bias, rotation, q back into qkv, K/V to their cache slots) -- on the
// same inputs, and asks for the same bits: the q columns of qkv and the whole K and V pools
// (only the token's slots may change). FASTGEN_QKV_ROPE must be 1 or 2 (the test runs both).
// Cases marked "deferred norm" give x as an RMSNorm row with its scale deferred (FASTGEN_NORM_DEFER
// must be 1): the same kernel against gemv_rms_deferred then the RoPE kernel.
//   rope_gemv_emu [name-substring]
#include <stdio.h>
#include <stdlib.h>

#include <cuda_fp8.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/gemm.cuh"
#include "cuda/rope.cuh"
#include "ropeCheck.h"

namespace {

typedef __nv_bfloat16 bf16;

struct Case {
  const char *name;
  int nh, nkv, hd, rot, K, bs, pos;
  bool interleaved, bias, fp8;
  float attn_factor;
  bool defer;
};

const std::vector<Case> kCases = {
    {"GQA 32/8 hd 128, K 4096 (N 6144: the narrow GEMV unfused), position 700", 32, 8, 128, 128, 4096, 16, 700, false, false, false, 1.f},
    {"MHA 32/32 hd 128, K 1040 (N 12288: the two-row GEMV unfused, a partial round), position 0", 32, 32, 128, 128, 1040, 16, 0, false, false, false, 1.f},
    {"partial rotary 32 of hd 64, biases, block 7, position 123", 8, 4, 64, 32, 264, 7, 123, false, true, false, 1.f},
    {"interleaved pairs (GPT-J), hd 64, biases, position 99999", 4, 4, 64, 64, 128, 16, 99999, true, true, false, 1.f},
    {"FP8 cache, GQA 16/4 hd 128, biases, position 513", 16, 4, 128, 128, 512, 16, 513, false, true, true, 1.f},
    {"rotary 24 of hd 64 (the any-size RoPE kernel), attention factor 1.2 (yarn), position 5000", 8, 2, 64, 24, 192, 16, 5000, false, false, false, 1.2f},
    {"hd 16 (fixture size), no rotation, block 4, position 9", 4, 2, 16, 0, 64, 4, 9, false, true, false, 1.f},
    {"deferred norm: GQA 32/8 hd 128, K 4096, position 700", 32, 8, 128, 128, 4096, 16, 700, false, false, false, 1.f, true},
    {"deferred norm: FP8 cache, partial rotary 32 of hd 64, biases, position 77", 8, 4, 64, 32, 264, 7, 77, false, true, true, 1.f, true},
};

bool run(const Case &c, std::mt19937 &rng) {
  const int bs = c.bs, K = c.K;
  const int nb = c.pos / bs + 3;  // the token's block is the last of its sequence's table
  std::vector<int> blocks(nb);
  for (int i = 0; i < nb; i++) blocks[i] = i;
  std::shuffle(blocks.begin(), blocks.end(), rng);
  const int positions[1] = {c.pos}, token_seq[1] = {0}, indptr[2] = {0, c.pos / bs + 1};
  rope_check::Layer L(c.nh, c.nkv, c.hd, c.rot, bs, c.interleaved, c.fp8, c.bias, nb, rng);
  L.attn_factor = c.attn_factor, L.positions = positions, L.token_seq = token_seq, L.indptr = indptr;
  L.blocks = blocks.data();
  const int N = L.width();
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<bf16> x(K), w((size_t)N * K);
  for (auto &v : x) v = __float2bfloat16_rn(nd(rng));
  std::vector<float> h(K), wn(K);
  for (auto &v : h) v = 3.f * nd(rng);
  for (auto &v : wn) v = 1.f + 0.3f * u(rng);
  const fgcu::RmsRows rms = {h.data(), wn.data(), 1e-5f};
  for (auto &v : w) v = __float2bfloat16_rn(nd(rng) * 0.05f);
  rope_check::Run A(L, 1), B(L, 1);
  char err[512] = "";
  const fgcu::RopeArgs ra = rope_check::args(L, A), rb = rope_check::args(L, B);
  if (!fgcu::qkv_gemv_rope_takes(rb, 1, N, K)) {
    printf("FAIL %s: qkv_gemv_rope does not take it (FASTGEN_QKV_ROPE unset?)\n", c.name);
    return false;
  }
  const int gemv_rc = c.defer ? fgcu::gemv_rms_deferred(rms, w.data(), nullptr, -1, A.qkv.data(), 1, N, K, nullptr, err)
                              : fgcu::gemm(nullptr, x.data(), w.data(), A.qkv.data(), false, false, 1, N, K, nullptr, err);
  if (gemv_rc || fgcu::qkv_rope_kv_write(ra, 1, nullptr, err) ||
      fgcu::qkv_gemv_rope(x.data(), c.defer ? &rms : nullptr, w.data(), rb, N, K, nullptr, err)) {
    printf("FAIL %s: %s\n", c.name, err);
    return false;
  }
  return rope_check::same(c.name, L, 1, K, A, B);
}

}  // namespace

int main(int argc, char **argv) { return emu::run_cases(kCases, run, 2468, argc, argv); }
