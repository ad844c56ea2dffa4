// RoPE + KV-cache write on the device. CPU twins: cpu/rope.cpp, cpu/attention.cpp
// (write_kv_cache). Launches on `stream`; returns 0 or an fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"
#include "cuda/kv_fp8.cuh"
#include "cuda/rms_fold.cuh"

namespace fgcu {

// One layer's q/k/v post-processing after the qkv GEMM.
//   qkv: [T, (nh + 2 nkv) * hd] bf16, in place: q and k heads get + bias, then (qk_norm) a
//   per-head RMSNorm times q_norm / k_norm, then RoPE on their first rot dims (rotate_half
//   pairing i <-> i + rot/2, or interleaved 2i <-> 2i + 1; angle = position * inv_freq[i] in
//   double, cos and sin times attn_factor); k and v (+ bias) are then written to their cache
//   slots. The q part stays in qkv for attention.
//   cache: [num_blocks, nkv, block_size, hd] bf16, or (kv_fp8) E4M3 bytes e4m3(k / k_scale),
//   e4m3(v / v_scale) of the fp32 values (cuda/kv_fp8.cuh)
struct RopeArgs {
  bf16 *qkv;
  const float *bias;                    // [(nh + 2 nkv) * hd] or null
  const int *positions, *token_seq, *block_indptr, *block_indices;  // device, per step
  const double *inv_freq;               // [rot / 2] device; null or rot == 0: no rotation
  float attn_factor;                    // 1 unless yarn / longrope
  const float *q_norm, *k_norm;         // [hd] each, (offset + w) already; null: no qk_norm
  float eps;                            // of the qk norms
  int nh, nkv, hd, rot, block_size;
  int interleaved;                      // pairs (2i, 2i + 1) (GPT-J, DeepSeek), else (i, i + rot / 2)
  bf16 *k_cache, *v_cache;              // this layer's pool (kv_fp8: E4M3 bytes)
  bool kv_fp8;
  float k_scale, v_scale;               // kv_fp8: the layer's scales (> 0)
  // Decode: bytes of the o projection's weights pulled into L2 meanwhile, so that the o GEMV after
  // attention reads them from there (RoPE and attention leave DRAM idle; FASTGEN_PREFETCH_O).
  const void *prefetch;                 // null: none
  size_t prefetch_bytes;                // a multiple of 16
};

// cos/sin of position * inv_freq for one token into cs[0..half) / cs[half..2 half), by the
// block's threads (then a barrier): the angle and its reduction to [-pi, pi] in double
// (positions reach 1e6), the sine and cosine in float, both times the attention factor (yarn,
// longrope; it scales q.k by its square, as transformers does). Shared with cuda/mla.cu.
// One entry of it (pair i): every RoPE kernel computes its cos/sin here, so all agree bit for bit.
__device__ __forceinline__ void rope_cos_sin(int pos, double inv_freq, float factor, float &c, float &s) {
  double a = (double)pos * inv_freq;
  a -= 6.283185307179586476925 * rint(a * 0.159154943091895335769);
  float sn, cn;
  sincosf((float)a, &sn, &cn);
  c = cn * factor;
  s = sn * factor;
}
__device__ __forceinline__ void rope_table(float *cs, int pos, const double *inv_freq, int half,
                                           float factor) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) rope_cos_sin(pos, inv_freq[i], factor, cs[i], cs[half + i]);
  __syncthreads();
}

// The rotation of one pair (x1, x2) by (c, s), rounded the same way wherever it runs (explicit
// fma and multiplies: no contraction left to the compiler), so the vectorized and the any-size RoPE
// kernels give the same bits.
__device__ __forceinline__ void rope_rotate(float x1, float x2, float c, float s, float &o1, float &o2) {
  o1 = __fmaf_rn(x1, c, -__fmul_rn(x2, s));
  o2 = __fmaf_rn(x2, c, __fmul_rn(x1, s));
}

// Sum of squares of head h of a qkv row (+ bias) over lanes d = lane, lane + 32, ... of one warp,
// then a butterfly: every lane returns the total (qk_norm's 1 / rms is rsqrtf(total / hd + eps)).
__device__ __forceinline__ float head_sumsq(const bf16 *row, const float *bias, int h, int hd) {
  const int lane = threadIdx.x & 31;
  float ss = 0.f;
  for (int d = lane; d < hd; d += 32) {
    float x = to_f(row[h * hd + d]);
    if (bias) x += bias[h * hd + d];
    ss = __fmaf_rn(x, x, ss);
  }
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  return ss;
}

// One warp, as the any-size RoPE kernel does it: q or k head `head` (q: < nh) of a token's qkv row,
// + bias, qk_norm, rotated by the token's table cs (rope_table: cos [rot / 2], then sin);
// put(d, value) for each of its hd dims (fp32, before the store's rounding). Reads the row only.
template <class Put>
__device__ __forceinline__ void rope_head_warp(const RopeArgs &p, const bf16 *row, int head, const float *cs, Put put) {
  const int lane = threadIdx.x & 31, hd = p.hd, rot = p.inv_freq ? p.rot : 0, half = rot / 2;
  const int base = head * hd;
  const float *wn = p.q_norm ? (head < p.nh ? p.q_norm : p.k_norm) : nullptr;
  const float r = wn ? rsqrtf(head_sumsq(row, p.bias, head, hd) / hd + p.eps) : 1.f;
  const int per_head = half + (hd - rot), pa = p.interleaved ? 2 : 1, pb = p.interleaved ? 1 : half;
  for (int j = lane; j < per_head; j += 32) {
    if (j < half) {
      const int d1 = pa * j, d2 = pa * j + pb;
      float x1 = to_f(row[base + d1]), x2 = to_f(row[base + d2]);
      if (p.bias) x1 += p.bias[base + d1], x2 += p.bias[base + d2];
      if (wn) x1 *= r * wn[d1], x2 *= r * wn[d2];
      float o1, o2;
      rope_rotate(x1, x2, cs[j], cs[half + j], o1, o2);
      put(d1, o1);
      put(d2, o2);
    } else {
      const int d = rot + (j - half);
      float x = to_f(row[base + d]);
      if (p.bias) x += p.bias[base + d];
      if (wn) x *= r * wn[d];
      put(d, x);
    }
  }
}

int qkv_rope_kv_write(const RopeArgs &a, int T, cudaStream_t stream, char *err);

// RoPE in a qkv GEMV's epilogue: the GEMV computes output rows in the pairs RoPE combines, then
// finishes each pair as the RoPE kernel would. Pair `pair` of the (nh + 2 nkv) hd / 2: dims i and
// i + rot / 2 of a q or k head (2i and 2i + 1 when interleaved; two adjacent dims past rot and in
// v heads), weight rows n0 and n1 (p.rot is 0 when there is no rotation). Used by the small-M
// kernel's ROPE form (FASTGEN_QKV_ROPE=3); rope.cu's one-token kernel keeps the same mapping and
// epilogue written out, the form that ran bit-identical on the device (stop 26): moving it onto
// these changed its PTX, and the small-M form failed on an H100 for a reason not yet found.
struct QkvPair {
  int n0, n1;   // qkv rows (weight rows)
  int head, j;  // head (q: < nh, k: < nh + nkv, then v) and pair index in it
  int d1, d2;   // the head's two dims
  bool rotate;
};
__device__ __forceinline__ QkvPair qkv_pair(const RopeArgs &p, int pair) {
  QkvPair q;
  const int half_hd = p.hd / 2, half = p.rot / 2, qk = p.nh + p.nkv;
  q.head = pair / half_hd, q.j = pair % half_hd;
  q.rotate = q.head < qk && q.j < half;
  if (q.rotate) q.d1 = p.interleaved ? 2 * q.j : q.j, q.d2 = p.interleaved ? 2 * q.j + 1 : q.j + half;
  else if (q.head < qk) q.d1 = p.rot + 2 * (q.j - half), q.d2 = q.d1 + 1;
  else q.d1 = 2 * q.j, q.d2 = q.d1 + 1;
  q.n0 = q.head * p.hd + q.d1, q.n1 = q.head * p.hd + q.d2;
  return q;
}
// One token's pair: its two sums x1, x2 as gemm() stores them (bf16), + bias, rotated by the
// token's angle at position pos (rope_cos_sin, as the RoPE kernel), then q back into q_row (the
// token's qkv row), K / V to their slot of cache block blk. The RoPE kernel's bits.
template <typename KV>
__device__ __forceinline__ void qkv_pair_store(const RopeArgs &p, const QkvPair &q, int pos, int blk, float x1,
                                               float x2, bf16 *q_row) {
  x1 = to_f(to_bf(x1)), x2 = to_f(to_bf(x2));
  if (p.bias) x1 += p.bias[q.n0], x2 += p.bias[q.n1];
  if (q.rotate) {
    float c, s;
    rope_cos_sin(pos, p.inv_freq[q.j], p.attn_factor, c, s);
    rope_rotate(x1, x2, c, s, x1, x2);
  }
  if (q.head < p.nh) {
    q_row[q.n0] = to_bf(x1);
    q_row[q.n1] = to_bf(x2);
    return;
  }
  const int qk = p.nh + p.nkv;
  const bool k = q.head < qk;
  const size_t slot = (size_t)pos % p.block_size;
  KV *cache = kv_ptr<KV>(k ? p.k_cache : p.v_cache) +
              (((size_t)blk * p.nkv + (k ? q.head - p.nh : q.head - qk)) * p.block_size + slot) * p.hd;
  const float scale = k ? p.k_scale : p.v_scale;
  kv_store(cache + q.d1, x1, scale);
  kv_store(cache + q.d2, x2, scale);
}
// The cache block of token m's position pos (its sequence's table).
__device__ __forceinline__ int qkv_token_block(const RopeArgs &p, int m, int pos) {
  return p.block_indices[p.block_indptr[p.token_seq[m]] + pos / p.block_size];
}

// Whether a qkv projection of N rows from K can take RoPE in its epilogue (FASTGEN_QKV_ROPE on;
// no qk-norm, which needs the whole head; no L2 prefetch; N = (nh + 2 nkv) hd, hd and hd - rot
// even, K % 8 == 0). Which GEMV then does it is the caller's: qkv_gemv_rope at one token (the
// one-token bf16 GEMV), the small-M kernel where it runs (gemv_small.cuh, linear.cuh).
bool qkv_rope_fusable(const RopeArgs &a, int N, int K);

// Decode at batch 1: the qkv GEMV (bf16 weights w [N, K], x [K] bf16) with the RoPE kernel's work
// in its epilogue, in place of gemm() + qkv_rope_kv_write(). Each warp streams two rows that
// RoPE pairs (i and i + rot / 2 of a q or k head, 2i and 2i + 1 when interleaved; two adjacent
// dims elsewhere) through gemv2_dots (gemv2.cuh), rounds their sums to bf16 as gemm() stores them,
// then does what the RoPE kernel does with them (bias, rotation by rope_cos_sin's angle, q back
// into a.qkv, k and v to their cache slots): the same bits as the two kernels. K/V columns of
// a.qkv are left unwritten. FASTGEN_QKV_ROPE picks it (and when it lets attention start).
// qkv_gemv_rope_takes: whether it takes this pass (one token; no qk-norm, no L2 prefetch;
// N = (nh + 2 nkv) hd, hd even, K % 8 == 0; the one-token GEMV on); qkv_gemv_rope fails with
// FG_ERR_INTERNAL otherwise.
bool qkv_gemv_rope_takes(const RopeArgs &a, int T, int N, int K);
// FASTGEN_QKV_ROPE == 2: the fused kernels let the next kernel (attention) in at their start.
bool qkv_rope_early();
// FASTGEN_QKV_ROPE == 3: the small-M kernel's qkv takes RoPE too (an experiment: its pdl.test
// pairs were not bit-identical on an H100, bench/results/device-wave19-h100.md call 2).
bool qkv_rope_small();
// defer: x is instead that RMSNorm row with its scale deferred (gemv2.cuh XRmsDeferred,
// FASTGEN_NORM_DEFER; then not bit-identical to norm + GEMV + RoPE kernel); null: x.
int qkv_gemv_rope(const bf16 *x, const RmsRows *defer, const bf16 *w, const RopeArgs &a, int N, int K,
                  cudaStream_t stream, char *err);

}  // namespace fgcu
