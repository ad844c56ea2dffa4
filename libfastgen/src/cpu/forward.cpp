#include "cpu/forward.h"

#include <cmath>
#include <cstring>

#include "cpu/gemm.h"
#include "cpu/mlp.h"
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
  rope_apply(q.data(), T, s.num_heads, s.head_dim, s.rotary_dim, cos.data(), sin.data());
  rope_apply(k.data(), T, s.num_kv_heads, s.head_dim, s.rotary_dim, cos.data(), sin.data());
  write_kv_cache(b.paged, k.data(), v.data(), kv.k, kv.v, s.num_kv_heads, s.head_dim);

  std::vector<float> attn(T * s.q_dim());  // [T, num_heads, head_dim]
  paged_attention(b.paged, q.data(), kv.k, kv.v, attn.data(), s.num_heads, s.num_kv_heads,
                  s.head_dim, s.sliding_window, (float)(1.0 / std::sqrt((double)s.head_dim)));
  gemm(attn.data(), w.o, w.o_bias, residual, T, H, s.q_dim(), /*accumulate=*/true);
}

}  // namespace

void forward(const ModelSpec &s, const ModelWeights &w, const std::vector<double> &inv_freq,
             const std::vector<KvLayer> &kv, const ForwardBatch &b, float *logits) {
  const int64_t T = b.paged.num_tokens, H = s.hidden_size;
  const float eps = (float)s.norm_eps;
  std::vector<float> h(T * H), x(T * H);  // residual stream and norm output: [T, hidden]
  for (int64_t t = 0; t < T; t++)
    memcpy(&h[t * H], w.embed + (int64_t)b.token_ids[t] * H, H * sizeof(float));
  std::vector<float> cos, sin;  // [T, rotary_dim / 2], shared by every layer
  rope_tables(inv_freq, b.paged.positions, T, cos, sin);

  for (size_t l = 0; l < w.layers.size(); l++) {
    const LayerWeights &lw = w.layers[l];
    norm(s.norm, h.data(), lw.attn_norm, lw.attn_norm_bias, x.data(), T, H, eps);
    if (s.parallel) {
      // h += attn(x) + mlp(x), both from the one norm output.
      attention_add(s, lw, kv[l], b, cos, sin, x.data(), h.data());
      mlp_add(s, lw, x.data(), h.data(), T);
    } else {
      attention_add(s, lw, kv[l], b, cos, sin, x.data(), h.data());
      norm(s.norm, h.data(), lw.mlp_norm, lw.mlp_norm_bias, x.data(), T, H, eps);
      mlp_add(s, lw, x.data(), h.data(), T);
    }
  }

  const int64_t R = b.num_logit_rows;
  std::vector<float> last(R * H);  // [R, hidden]
  for (int64_t r = 0; r < R; r++)
    memcpy(&last[r * H], &h[(int64_t)b.logit_tokens[r] * H], H * sizeof(float));
  norm(s.norm, last.data(), w.final_norm, w.final_norm_bias, last.data(), R, H, eps);
  gemm(last.data(), w.lm_head, w.lm_head_bias, logits, R, s.vocab_size, H);
}

}  // namespace cpu
}  // namespace fg
