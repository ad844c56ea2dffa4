#include "cpu/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp8.h"
#include "cpu/embed.h"
#include "cpu/gemm.h"
#include "cpu/mla.h"
#include "cpu/mlp.h"
#include "cpu/moe.h"
#include "cpu/norm.h"
#include "cpu/rope.h"
#include "cpu/softcap.h"
#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {
namespace {

// The pass's RoPE tables, made once and shared by the layers: full layers rotate with
// rope.inv_freq times the attention factor; sliding layers with rope.sliding_inv_freq at
// factor 1 when the spec gives them their own base (Gemma 3), else like the full layers.
struct RopeTables {
  std::vector<float> cos, sin;                  // [T, rotary_dim / 2]
  std::vector<float> sliding_cos, sliding_sin;  // [T, rotary_dim / 2], or empty
};

RopeTables make_rope_tables(const ModelSpec &s, const RopeFreqs &rope, const int32_t *positions,
                            int64_t T) {
  RopeTables r;
  if (!s.rope()) return r;
  rope_tables(rope.inv_freq, rope.attention_factor, positions, T, r.cos, r.sin);
  if (!rope.sliding_inv_freq.empty())
    rope_tables(rope.sliding_inv_freq, 1.0, positions, T, r.sliding_cos, r.sliding_sin);
  return r;
}

// What one layer's attention sees: its rotation table and its window (layer_types).
struct LayerAttn {
  const float *cos, *sin;  // [T, rotary_dim / 2]; null for learned positions
  int64_t window;          // 0: every earlier position (full layers)
};

LayerAttn layer_attn(const ModelSpec &s, const RopeTables &r, int64_t layer) {
  const bool sliding = s.sliding(layer), own = sliding && !r.sliding_cos.empty();
  const std::vector<float> &cos = own ? r.sliding_cos : r.cos, &sin = own ? r.sliding_sin : r.sin;
  return {cos.data(), sin.data(), sliding ? s.sliding_window : 0};
}

// residual: [T, hidden] += o(attention(x)), writing the layer's K/V to the cache.
// x: [T, hidden] (the attention norm's output).
void attention_add(const ModelSpec &s, const LayerWeights &w, const KvLayer &kv,
                   const ForwardBatch &b, const LayerAttn &a, const float *x, float *residual) {
  if (s.mla())
    return mla_attention_add(s, w, kv.k, b.paged, a.cos, a.sin, a.window, x, residual, kv.fp8 ? kv.k_scale : 0.f);
  const int64_t T = b.paged.num_tokens, H = s.hidden_size;
  std::vector<float> q(T * s.q_dim()), k(T * s.kv_dim()), v(T * s.kv_dim());
  gemm(x, w.q, w.q_bias, q.data(), T, s.q_dim(), H);   // q: [T, num_heads, head_dim]
  gemm(x, w.k, w.k_bias, k.data(), T, s.kv_dim(), H);  // k: [T, num_kv_heads, head_dim]
  gemm(x, w.v, w.v_bias, v.data(), T, s.kv_dim(), H);  // v: [T, num_kv_heads, head_dim]
  if (s.qk_norm) {
    // Per head, before RoPE (Qwen3, Gemma 3): q as rows [T * num_heads, head_dim], k likewise.
    const NormParams np = norm_params(s);
    norm(np, q.data(), w.q_norm, nullptr, q.data(), T * s.num_heads, s.head_dim);
    norm(np, k.data(), w.k_norm, nullptr, k.data(), T * s.num_kv_heads, s.head_dim);
  }
  if (s.rope()) {
    rope_apply(q.data(), T, s.num_heads, s.head_dim, s.rotary_dim, a.cos, a.sin, s.rope_interleaved);
    rope_apply(k.data(), T, s.num_kv_heads, s.head_dim, s.rotary_dim, a.cos, a.sin, s.rope_interleaved);
  }
  if (kv.fp8) {  // every read, this chunk's included, sees what the FP8 cache holds
    e4m3_round(k.data(), T * s.kv_dim(), kv.k_scale);
    e4m3_round(v.data(), T * s.kv_dim(), kv.v_scale);
  }
  write_kv_cache(b.paged, k.data(), v.data(), kv.k, kv.v, s.num_kv_heads, s.head_dim);

  std::vector<float> attn(T * s.q_dim());  // [T, num_heads, head_dim]
  paged_attention(b.paged, q.data(), kv.k, kv.v, attn.data(), s.num_heads, s.num_kv_heads,
                  s.head_dim, a.window, (float)s.softmax_scale(), (float)s.attn_logit_softcap);
  gemm(attn.data(), w.o, w.o_bias, residual, T, H, s.q_dim(), /*accumulate=*/true);
}

// residual: [T, hidden] += the layer's MLP (dense or mixture of experts) of x: [T, hidden].
void ffn_add(const ModelSpec &s, const LayerWeights &w, const float *x, float *residual,
             int64_t T) {
  if (w.moe) moe_add(s, w, x, residual, T);
  else mlp_add(s, w, x, residual, T);
}

// h: [T, hidden] = embed[token] * embed_scale (through embed_proj_in when embed_dim != hidden)
// (+ pos_embed[position] for learned positions).
void embed_tokens(const ModelSpec &s, const ModelWeights &w, const ForwardBatch &b, float *h) {
  const int64_t T = b.paged.num_tokens, H = s.hidden_size, D = s.embed_dim;
  std::vector<float> e(s.embed_proj() ? T * D : 0);  // [T, embed_dim]
  float *rows = s.embed_proj() ? e.data() : h;
  embed_rows(w.embed, b.token_ids, T, D, (float)s.embed_scale, rows);
  if (s.embed_proj()) gemm(e.data(), w.embed_proj_in, nullptr, h, T, H, D);
  if (!s.rope()) add_positions(w.pos_embed, b.paged.positions, T, H, h);
}

// One decoder layer: h: [T, hidden] in place; x, y: [T, hidden] scratch.
void layer_forward(const ModelSpec &s, const LayerWeights &lw, const KvLayer &kv,
                   const ForwardBatch &b, const LayerAttn &a, float *h, float *x, float *y) {
  const int64_t T = b.paged.num_tokens, H = s.hidden_size, n = T * H;
  const NormParams np = norm_params(s);
  if (s.parallel) {
    // h += attn(attn_norm(h)) + mlp(attn_norm(h) or mlp_norm(h)), both from the layer's input.
    norm(np, h, lw.attn_norm, lw.attn_norm_bias, x, T, H);
    if (s.parallel_mlp_norm) norm(np, h, lw.mlp_norm, lw.mlp_norm_bias, y, T, H);
    attention_add(s, lw, kv, b, a, x, h);
    ffn_add(s, lw, s.parallel_mlp_norm ? y : x, h, T);
  } else if (s.post_norm) {
    // h = attn_norm(h + attn(h)); h = mlp_norm(h + mlp(h))
    memcpy(x, h, n * sizeof(float));
    attention_add(s, lw, kv, b, a, x, h);
    norm(np, h, lw.attn_norm, lw.attn_norm_bias, h, T, H);
    memcpy(x, h, n * sizeof(float));
    ffn_add(s, lw, x, h, T);
    norm(np, h, lw.mlp_norm, lw.mlp_norm_bias, h, T, H);
  } else if (s.sandwich_norms) {
    // h += post_attn_norm(attn(attn_norm(h))); h += post_mlp_norm(mlp(mlp_norm(h))) (Gemma 2/3):
    // each sublayer adds into a zeroed y, normalized before it joins the residual.
    auto add_normalized = [&](const float *post_w) {
      norm(np, y, post_w, nullptr, y, T, H);
      for (int64_t i = 0; i < n; i++) h[i] += y[i];
    };
    norm(np, h, lw.attn_norm, nullptr, x, T, H);
    std::fill(y, y + n, 0.0f);
    attention_add(s, lw, kv, b, a, x, y);
    add_normalized(lw.post_attn_norm);
    norm(np, h, lw.mlp_norm, nullptr, x, T, H);
    std::fill(y, y + n, 0.0f);
    ffn_add(s, lw, x, y, T);
    add_normalized(lw.post_mlp_norm);
  } else {
    norm(np, h, lw.attn_norm, lw.attn_norm_bias, x, T, H);
    attention_add(s, lw, kv, b, a, x, h);
    norm(np, h, lw.mlp_norm, lw.mlp_norm_bias, x, T, H);
    ffn_add(s, lw, x, h, T);
  }
}

}  // namespace

void forward(const ModelSpec &s, const ModelWeights &w, const RopeFreqs &rope,
             const std::vector<KvLayer> &kv, const ForwardBatch &b, float *logits) {
  const int64_t T = b.paged.num_tokens, H = s.hidden_size;
  // residual stream, norm output, sublayer output: [T, hidden] each
  std::vector<float> h(T * H), x(T * H), y(T * H);
  embed_tokens(s, w, b, h.data());
  const RopeTables tables = make_rope_tables(s, rope, b.paged.positions, T);
  for (size_t l = 0; l < w.layers.size(); l++)
    layer_forward(s, w.layers[l], kv[l], b, layer_attn(s, tables, (int64_t)l), h.data(), x.data(),
                  y.data());

  const int64_t R = b.num_logit_rows, D = s.embed_dim;
  std::vector<float> last(R * H);  // [R, hidden]
  for (int64_t r = 0; r < R; r++)
    memcpy(&last[r * H], &h[(int64_t)b.logit_tokens[r] * H], H * sizeof(float));
  if (s.final_norm)
    norm(norm_params(s), last.data(), w.final_norm, w.final_norm_bias, last.data(), R, H);
  std::vector<float> proj(s.embed_proj() ? R * D : 0);  // [R, embed_dim]
  if (s.embed_proj()) gemm(last.data(), w.embed_proj_out, nullptr, proj.data(), R, D, H);
  gemm(s.embed_proj() ? proj.data() : last.data(), w.lm_head, w.lm_head_bias, logits, R,
       s.vocab_size, D);
  if (s.final_logit_softcap > 0)
    softcap(logits, R, s.vocab_size, (float)s.final_logit_softcap);
}

}  // namespace cpu
}  // namespace fg
