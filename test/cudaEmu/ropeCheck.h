// Shared by the fused-RoPE harnesses (ropeGemvHarness.cpp: the one-token qkv GEMV;
// ropeSmallHarness.cpp: the small-M one): a layer's RoPE inputs, one run's outputs (qkv rows and
// the K / V pools), the RopeArgs over them, and the check that the fused run wrote what the GEMV
// then the RoPE kernel wrote.
#pragma once
#include <stdio.h>
#include <string.h>

#include <cmath>
#include <random>
#include <vector>

#include "cuda/rope.cuh"

namespace rope_check {

typedef __nv_bfloat16 bf16;

// One layer's RoPE inputs: bias, inv_freq and a K / V pool of nb blocks filled with small finite
// values in both encodings; positions, sequences and block tables are the caller's.
struct Layer {
  int nh, nkv, hd, rot, bs;
  bool interleaved, kv_fp8;
  float attn_factor = 1.f;
  const int *positions, *token_seq, *indptr, *blocks;
  std::vector<float> bias;  // empty: none
  std::vector<double> inv_freq;
  std::vector<unsigned char> kv0;
  float k_scale, v_scale;

  Layer(int nh_, int nkv_, int hd_, int rot_, int bs_, bool interleaved_, bool kv_fp8_, bool with_bias, int nb,
        std::mt19937 &rng)
      : nh(nh_), nkv(nkv_), hd(hd_), rot(rot_), bs(bs_), interleaved(interleaved_), kv_fp8(kv_fp8_) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    if (with_bias) {
      bias.resize((size_t)(nh + 2 * nkv) * hd);
      for (auto &v : bias) v = 0.2f * u(rng);
    }
    inv_freq.resize(std::max(1, rot / 2));
    for (int i = 0; i < rot / 2; i++) inv_freq[i] = pow(10000.0, -2.0 * i / rot);
    kv0.resize((size_t)nb * nkv * bs * hd * (kv_fp8 ? 1 : 2));
    for (auto &b : kv0) b = (unsigned char)(rng() & 0x3f);
    k_scale = kv_fp8 ? 0.02f : 1.f, v_scale = kv_fp8 ? 0.015f : 1.f;
  }
  int width() const { return (nh + 2 * nkv) * hd; }
};

// One run's outputs: M qkv rows (NaN before) and its own copy of the pools.
struct Run {
  std::vector<bf16> qkv;
  std::vector<unsigned char> k, v;
  Run(const Layer &L, int M) : qkv((size_t)M * L.width(), __float2bfloat16_rn(NAN)), k(L.kv0), v(L.kv0) {}
};

inline fgcu::RopeArgs args(const Layer &L, Run &r) {
  fgcu::RopeArgs ra;
  memset(&ra, 0, sizeof ra);
  ra.qkv = r.qkv.data(), ra.bias = L.bias.empty() ? nullptr : L.bias.data();
  ra.positions = L.positions, ra.token_seq = L.token_seq, ra.block_indptr = L.indptr, ra.block_indices = L.blocks;
  ra.inv_freq = L.rot > 0 ? L.inv_freq.data() : nullptr, ra.attn_factor = L.attn_factor, ra.eps = 1e-6f;
  ra.nh = L.nh, ra.nkv = L.nkv, ra.hd = L.hd, ra.rot = L.rot, ra.block_size = L.bs, ra.interleaved = L.interleaved;
  ra.k_cache = (bf16 *)r.k.data(), ra.v_cache = (bf16 *)r.v.data(), ra.kv_fp8 = L.kv_fp8;
  ra.k_scale = L.k_scale, ra.v_scale = L.v_scale;
  return ra;
}

// Whether fused run B wrote the bits of reference run A (the GEMV then the RoPE kernel): the q
// columns of every one of the M rows (no NaN left), the whole K and V pools, and A wrote some K/V.
inline bool same(const char *name, const Layer &L, int M, int K, const Run &A, const Run &B) {
  const int N = L.width(), qw = L.nh * L.hd;
  bool q = true, nan = false;
  for (int m = 0; m < M; m++) {
    q &= memcmp(A.qkv.data() + (size_t)m * N, B.qkv.data() + (size_t)m * N, (size_t)qw * 2) == 0;
    for (int i = 0; i < qw; i++) nan |= std::isnan(__bfloat162float(B.qkv[(size_t)m * N + i]));
  }
  const bool kv = A.k == B.k && A.v == B.v, wrote = A.k != L.kv0 && A.v != L.kv0;
  const bool ok = q && !nan && kv && wrote;
  printf("%s %s (N %d, K %d):%s%s%s%s\n", ok ? "ok" : "FAIL", name, N, K, q ? "" : " q differs", nan ? " NaN in q" : "",
         kv ? "" : " K/V written differ", wrote ? "" : " the RoPE kernel wrote no K/V");
  return ok;
}

}  // namespace rope_check
