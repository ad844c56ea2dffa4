#include "cpu/forward.h"

#include <cmath>
#include <cstring>

#include "cpu/gemm.h"
#include "cpu/mlp.h"
#include "cpu/moe.h"
#include "cpu/norm.h"
#include "cpu/rope.h"

namespace fg {
namespace cpu {
namespace {

// residual: [T, hidden] += o(attention(norm_out)), writing the layer's K/V to the cache.
// x: [T, hidden] (the attention norm's output).
void attention_add(const ModelSpec &s, const LayerWeights &w, const KvLayer &kv,
                   const ForwardBatch &b, const std::vector<float> &cos,
                   const std::vector<float> &sin, const float *x, float *residual) {
  const int64_t T = b.paged.num_tokens, H = s.hidden_size;
  std::vector<float> q(T * s.q_dim()), k(T * s.kv_dim()), v(T * s.kv_dim());
  gemm(x, w.q, w.q_bias, q.data(), T, s.q_dim(), H);   // q: [T, num_heads, head_dim]
  gemm(x, w.k, w.k_bias, k.data(), T, s.kv_dim(), H);  // k: [T, num_kv_heads, head_dim]
  gemm(x, w.v, w.v_bias, v.data(), T, s.kv_dim(), H);  // v: [T, num_kv_heads, head_dim]
  if (s.rope()) {
    rope_apply(q.data(), T, s.num_heads, s.head_dim, s.rotary_dim, cos.data(), sin.data());
    rope_apply(k.data(), T, s.num_kv_heads, s.head_dim, s.rotary_dim, cos.data(), sin.data());
  }
  write_kv_cache(b.paged, k.data(), v.data(), kv.k, kv.v, s.num_kv_heads, s.head_dim);

  std::vector<float> attn(T * s.q_dim());  // [T, num_heads, head_dim]
  paged_attention(b.paged, q.data(), kv.k, kv.v, attn.data(), s.num_heads, s.num_kv_heads,
                  s.head_dim, s.sliding_window, (float)(1.0 / std::sqrt((double)s.head_dim)));
  gemm(attn.data(), w.o, w.o_bias, residual, T, H, s.q_dim(), /*accumulate=*/true);
}

// residual: [T, hidden] += the layer's MLP (dense or mixture of experts) of x: [T, hidden].
void ffn_add(const ModelSpec &s, const LayerWeights &w, const float *x, float *residual,
             int64_t T) {
  if (s.moe()) moe_add(s, w, x, residual, T);
  else mlp_add(s, w, x, residual, T);
}

// h: [T, hidden] = embed[token] (through embed_proj_in when embed_dim != hidden)
// (+ pos_embed[position] for learned positions).
void embed_tokens(const ModelSpec &s, const ModelWeights &w, const ForwardBatch &b, float *h) {
  const int64_t T = b.paged.num_tokens, H = s.hidden_size, D = s.embed_dim;
  std::vector<float> e(s.embed_proj() ? T * D : 0);  // [T, embed_dim]
  float *rows = s.embed_proj() ? e.data() : h;
  for (int64_t t = 0; t < T; t++)
    memcpy(rows + t * D, w.embed + (int64_t)b.token_ids[t] * D, D * sizeof(float));
  if (s.embed_proj()) gemm(e.data(), w.embed_proj_in, nullptr, h, T, H, D);
  if (!s.rope())
    for (int64_t t = 0; t < T; t++) {
      const float *p = w.pos_embed + (int64_t)b.paged.positions[t] * H;
      for (int64_t i = 0; i < H; i++) h[t * H + i] += p[i];
    }
}

}  // namespace

void forward(const ModelSpec &s, const ModelWeights &w, const RopeFreqs &rope,
             const std::vector<KvLayer> &kv, const ForwardBatch &b, float *logits) {
  const int64_t T = b.paged.num_tokens, H = s.hidden_size;
  const float eps = (float)s.norm_eps;
  std::vector<float> h(T * H), x(T * H);  // residual stream and norm output: [T, hidden]
  embed_tokens(s, w, b, h.data());
  std::vector<float> cos, sin;  // [T, rotary_dim / 2], shared by every layer
  if (s.rope()) rope_tables(rope.inv_freq, b.paged.positions, T, cos, sin);

  for (size_t l = 0; l < w.layers.size(); l++) {
    const LayerWeights &lw = w.layers[l];
    if (s.parallel) {
      // h += attn(attn_norm(h)) + mlp(attn_norm(h) or mlp_norm(h)), both from the layer's input.
      norm(s.norm, h.data(), lw.attn_norm, lw.attn_norm_bias, x.data(), T, H, eps);
      std::vector<float> x_mlp;  // [T, hidden], only with a second norm
      if (s.parallel_mlp_norm) {
        x_mlp.resize(T * H);
        norm(s.norm, h.data(), lw.mlp_norm, lw.mlp_norm_bias, x_mlp.data(), T, H, eps);
      }
      attention_add(s, lw, kv[l], b, cos, sin, x.data(), h.data());
      ffn_add(s, lw, s.parallel_mlp_norm ? x_mlp.data() : x.data(), h.data(), T);
    } else if (s.post_norm) {
      // h = attn_norm(h + attn(h)); h = mlp_norm(h + mlp(h))
      x = h;
      attention_add(s, lw, kv[l], b, cos, sin, x.data(), h.data());
      norm(s.norm, h.data(), lw.attn_norm, lw.attn_norm_bias, h.data(), T, H, eps);
      x = h;
      ffn_add(s, lw, x.data(), h.data(), T);
      norm(s.norm, h.data(), lw.mlp_norm, lw.mlp_norm_bias, h.data(), T, H, eps);
    } else {
      norm(s.norm, h.data(), lw.attn_norm, lw.attn_norm_bias, x.data(), T, H, eps);
      attention_add(s, lw, kv[l], b, cos, sin, x.data(), h.data());
      norm(s.norm, h.data(), lw.mlp_norm, lw.mlp_norm_bias, x.data(), T, H, eps);
      ffn_add(s, lw, x.data(), h.data(), T);
    }
  }

  const int64_t R = b.num_logit_rows, D = s.embed_dim;
  std::vector<float> last(R * H);  // [R, hidden]
  for (int64_t r = 0; r < R; r++)
    memcpy(&last[r * H], &h[(int64_t)b.logit_tokens[r] * H], H * sizeof(float));
  if (s.final_norm) norm(s.norm, last.data(), w.final_norm, w.final_norm_bias, last.data(), R, H, eps);
  std::vector<float> proj(s.embed_proj() ? R * D : 0);  // [R, embed_dim]
  if (s.embed_proj()) gemm(last.data(), w.embed_proj_out, nullptr, proj.data(), R, D, H);
  gemm(s.embed_proj() ? proj.data() : last.data(), w.lm_head, w.lm_head_bias, logits, R,
       s.vocab_size, D);
}

}  // namespace cpu
}  // namespace fg
