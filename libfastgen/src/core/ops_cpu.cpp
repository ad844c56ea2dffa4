// The CPU backend's test hooks (backend.h OpHooks): each op of fg_paged_attention,
// fg_mla_attention, fg_sample_logits and fg_run_op (op_hooks.h) through the CPU backend's own code for it, the
// reference the CUDA kernels are held against. Arguments were checked by test_hooks.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/backend.h"
#include "core/fp8.h"
#include "core/sample_rows.h"
#include "cpu/activation.h"
#include "cpu/attention.h"
#include "cpu/embed.h"
#include "cpu/moe.h"
#include "cpu/norm.h"
#include "cpu/rope.h"
#include "cpu/softcap.h"

namespace fg {
namespace {

using Bufs = void *const *;
float *f32(Bufs b, int i) { return (float *)b[i]; }
const int32_t *i32(Bufs b, int i) { return (const int32_t *)b[i]; }

cpu::NormParams norm_of(int32_t kind, float eps) {
  return {kind == 1 ? NormKind::Layer : NormKind::Rms, eps, 0.0f};
}

// The batch as cpu/attention.h reads it; token_seq is filled here and must outlive the result.
cpu::PagedBatch paged_batch(const fg_batch *b, int32_t block_size, std::vector<int32_t> *token_seq) {
  token_seq->assign(b->num_tokens, 0);
  for (int32_t s = 0; s < b->num_seqs; s++)
    for (int32_t t = b->cu_seqlens[s]; t < b->cu_seqlens[s + 1]; t++) (*token_seq)[t] = s;
  return {b->num_tokens, b->positions, token_seq->data(), b->block_indptr, b->block_indices, block_size};
}

// An FP8 hook cache: a copy of the n values as the CPU's FP8 cache keeps them, e4m3(x / s) * s.
std::vector<float> fp8_cache(const float *x, int64_t n, float scale) {
  std::vector<float> c(x, x + n);
  e4m3_round(c.data(), n, scale);
  return c;
}

void paged_attention(const fg_batch *b, const float *q, const float *k_cache, const float *v_cache, float *out,
                     int32_t num_heads, int32_t num_kv_heads, int32_t head_dim, int32_t block_size, int32_t num_blocks,
                     int32_t window, float scale, float softcap, int32_t, int32_t, const HookKvFp8 *fp8) {
  std::vector<int32_t> token_seq;
  std::vector<float> k8, v8;
  if (fp8) {
    const int64_t n = (int64_t)num_blocks * block_size * num_kv_heads * head_dim;
    k8 = fp8_cache(k_cache, n, fp8->k_scale), v8 = fp8_cache(v_cache, n, fp8->v_scale);
    k_cache = k8.data(), v_cache = v8.data();
  }
  cpu::paged_attention(paged_batch(b, block_size, &token_seq), q, k_cache, v_cache, out, num_heads, num_kv_heads,
                       head_dim, window, scale, softcap);
}

// cpu/mla.cpp's call: one shared row per position as keys and (its latent part) values.
void mla_attention(const fg_batch *b, const float *q, const float *cache, float *out, int32_t num_heads,
                   int32_t latent, int32_t rope, int32_t block_size, int32_t num_blocks, int32_t window, float scale,
                   float softcap, int32_t, const HookKvFp8 *fp8) {
  std::vector<int32_t> token_seq;
  std::vector<float> c8;
  if (fp8) {
    c8 = fp8_cache(cache, (int64_t)num_blocks * block_size * (latent + rope), fp8->k_scale);
    cache = c8.data();
  }
  cpu::paged_attention(paged_batch(b, block_size, &token_seq), q, cache, cache, out, num_heads, 1, latent + rope,
                       window, scale, softcap, latent);
}

void sample(const fg_batch *b, const float *logits, int32_t vocab, fg_step_output *out) {
  sample_rows(b, logits, vocab, out, PenaltySlots());
}

// cpu/attention.cpp's forward: the gemm's bias, qk norms, rope_apply, write_kv_cache.
void rope(const int32_t *d, const float *p, Bufs b) {
  const int64_t T = d[0], nh = d[1], nkv = d[2], hd = d[3], rot = b[3] ? d[4] : 0, bs = d[5];
  const int64_t W = (nh + 2 * nkv) * hd, qn = nh * hd, kn = nkv * hd;
  float *qkv = f32(b, 0);
  const int32_t *positions = i32(b, 1);
  const float *bias = f32(b, 4), *q_norm = f32(b, 5), *k_norm = f32(b, 6);
  std::vector<float> q(T * qn), k(T * kn), v(T * kn);  // [T, heads, hd]
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < W; i++) {
      const float x = qkv[t * W + i] + (bias ? bias[i] : 0.0f);
      if (i < qn) q[t * qn + i] = x;
      else if (i < qn + kn) k[t * kn + i - qn] = x;
      else v[t * kn + i - qn - kn] = x;
    }
  if (q_norm) {
    cpu::norm(norm_of(0, p[1]), q.data(), q_norm, nullptr, q.data(), T * nh, hd);
    cpu::norm(norm_of(0, p[1]), k.data(), k_norm, nullptr, k.data(), T * nkv, hd);
  }
  if (rot > 0) {
    const double *f = (const double *)b[3];
    std::vector<float> cos, sin;
    cpu::rope_tables(std::vector<double>(f, f + rot / 2), p[0], positions, T, cos, sin);
    cpu::rope_apply(q.data(), T, nh, hd, rot, cos.data(), sin.data());
    cpu::rope_apply(k.data(), T, nkv, hd, rot, cos.data(), sin.data());
  }
  for (int64_t t = 0; t < T; t++) std::copy(&q[t * qn], &q[t * qn] + qn, qkv + t * W);
  // Each token its own sequence, whose table is offset so that entry positions[t] / bs is
  // blocks[t]: slot positions[t] % bs of that block.
  std::vector<int32_t> seq(T), indptr(T);
  for (int64_t t = 0; t < T; t++) seq[t] = (int32_t)t, indptr[t] = (int32_t)(t - positions[t] / bs);
  const cpu::PagedBatch pb{T, positions, seq.data(), indptr.data(), i32(b, 2), bs};
  cpu::write_kv_cache(pb, k.data(), v.data(), f32(b, 7), f32(b, 8), nkv, hd);
}

void norm(const int32_t *d, const float *p, Bufs b) {
  const int64_t R = d[0], H = d[1];
  float *h = f32(b, 0), *out = f32(b, 6);
  const int32_t *rows = i32(b, 1);
  const float *add_a = f32(b, 2), *add_b = f32(b, 3);
  for (int64_t r = 0; r < R; r++) {
    float *src = h + (rows ? rows[r] : r) * H, *x = out + r * H;
    for (int64_t i = 0; i < H; i++) x[i] = src[i] + (add_a ? add_a[i] : 0.0f) + (add_b ? add_b[i] : 0.0f);
    if (d[4]) memcpy(src, x, H * sizeof(float));
  }
  if (d[3] != 2) cpu::norm(norm_of(d[3], p[0]), out, f32(b, 4), f32(b, 5), out, R, H);
}

void post_norm(const int32_t *d, const float *p, Bufs b) {
  const int64_t R = d[0], H = d[1];
  float *h = f32(b, 0);
  if (const float *add = f32(b, 1))
    for (int64_t i = 0; i < R * H; i++) h[i] += add[i % H];
  cpu::norm(norm_of(d[2], p[0]), h, f32(b, 2), f32(b, 3), h, R, H);
  memcpy(f32(b, 4), h, R * H * sizeof(float));
}

// cpu/forward.cpp's sandwich norms: the sublayer's output normed into the residual, then the
// next sublayer's norm.
void sandwich_norm(const int32_t *d, const float *p, Bufs b) {
  const int64_t R = d[0], H = d[1];
  float *h = f32(b, 0);
  const float *y = f32(b, 1), *bias = f32(b, 2);
  std::vector<float> z(R * H);
  for (int64_t i = 0; i < R * H; i++) z[i] = y[i] + (bias ? bias[i % H] : 0.0f);
  cpu::norm(norm_of(0, p[0]), z.data(), f32(b, 3), nullptr, z.data(), R, H);
  for (int64_t i = 0; i < R * H; i++) h[i] += z[i];
  if (b[4]) cpu::norm(norm_of(0, p[0]), h, f32(b, 4), nullptr, f32(b, 5), R, H);
}

// The CPU adds the MLP's biases in its GEMMs and keeps gate and up apart: the same sums here.
void activation(const int32_t *d, const float *, Bufs b) {
  const int64_t T = d[0], I = d[1];
  const MlpKind kind = (MlpKind)d[2];  // fg_run_op's kinds are MlpKind's order
  const float *in = f32(b, 0), *bias = f32(b, 1);
  float *out = f32(b, 2);
  if (d[2] > 2) {
    for (int64_t i = 0; i < T * I; i++) out[i] = in[i] + (bias ? bias[i % I] : 0.0f);
    return cpu::activate(kind, nullptr, out, T * I);
  }
  std::vector<float> gate(T * I);
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < I; i++) {
      gate[t * I + i] = in[(t * I + i) * 2] + (bias ? bias[2 * i] : 0.0f);
      out[t * I + i] = in[(t * I + i) * 2 + 1] + (bias ? bias[2 * i + 1] : 0.0f);
    }
  cpu::activate(kind, gate.data(), out, T * I);
}

void embed(const int32_t *d, const float *p, Bufs b) {
  const int64_t T = d[0], H = d[1];
  const int32_t *ids = i32(b, 1);
  float *h = f32(b, 4);
  for (int64_t t = 0; t < T; t++) {  // the CPU has no shards: a token outside this one adds 0
    const int32_t row = ids[t] - d[2];
    if (row >= 0 && row < d[3]) cpu::embed_rows(f32(b, 0), &row, 1, H, p[0], h + t * H);
    else std::fill(h + t * H, h + (t + 1) * H, 0.0f);
  }
  if (b[3]) cpu::add_positions(f32(b, 3), i32(b, 2), T, H, h);
}

void bias_rows(const int32_t *d, const float *, Bufs b) {
  float *y = f32(b, 0);
  const float *bias = f32(b, 1);
  for (int64_t i = 0; i < (int64_t)d[0] * d[1]; i++) y[i] += bias[i % d[1]];
}

void moe_route(const int32_t *d, const float *p, Bufs b) {
  const cpu::MoeRouting r = cpu::moe_route(f32(b, 0), d[0], d[1], d[2], d[3] != 0, d[5], d[6], p[0]);
  std::copy(r.expert_ids.begin(), r.expert_ids.end(), (int32_t *)b[1]);
  std::copy(r.weights.begin(), r.weights.end(), f32(b, 2));
  std::copy(r.expert_offsets.begin(), r.expert_offsets.end(), (int32_t *)b[3]);
  std::copy(r.token_slots.begin(), r.token_slots.end(), (int32_t *)b[4]);
}

void expert_gate(const int32_t *d, const float *, Bufs b) {
  const int64_t T = d[0], I = d[2];
  std::vector<float> g(T);
  cpu::expert_gate(f32(b, 0), f32(b, 1), T, d[1], g.data());
  float *act = f32(b, 2);
  for (int64_t i = 0; i < T * I; i++) act[i] *= g[i / I];
}

void run_op(int32_t op, const int32_t *d, const float *p, Bufs b) {
  switch (op) {
    case FG_OP_ROPE: return rope(d, p, b);
    case FG_OP_NORM: return norm(d, p, b);
    case FG_OP_POST_NORM: return post_norm(d, p, b);
    case FG_OP_SANDWICH_NORM: return sandwich_norm(d, p, b);
    case FG_OP_ACTIVATION: return activation(d, p, b);
    case FG_OP_EMBED: return embed(d, p, b);
    case FG_OP_POS_EMBED: return cpu::add_positions(f32(b, 0), i32(b, 1), d[0], d[1], f32(b, 2));
    case FG_OP_BIAS_ROWS: return bias_rows(d, p, b);
    case FG_OP_SOFTCAP: return cpu::softcap(f32(b, 0), 1, d[0], p[0]);
    case FG_OP_MOE_ROUTE: return moe_route(d, p, b);
    case FG_OP_EXPERT_GATE: return expert_gate(d, p, b);
  }
}

}  // namespace

const OpHooks kCpuOps = {paged_attention, mla_attention, sample, run_op};

}  // namespace fg
