#include "cpu/mla.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/fp8.h"
#include "cpu/gemm.h"
#include "cpu/norm.h"
#include "cpu/rope.h"
#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {

void mla_attention_add(const ModelSpec &s, const LayerWeights &w, float *cache, const PagedBatch &b,
                       const float *cos, const float *sin, int64_t window, const float *x,
                       float *residual, float fp8_scale) {
  const int64_t T = b.num_tokens, H = s.hidden_size, nh = s.num_heads;
  const int64_t L = s.kv_lora_rank, R = s.qk_rope_head_dim, dn = s.qk_nope_head_dim, dv = s.v_head_dim;
  const int64_t dq = dn + R, row = L + R, kvb = dn + dv;  // a q head, a cache row, kv_b's rows per head
  NormParams latent = norm_params(s);
  latent.eps = (float)s.latent_norm_eps;

  std::vector<float> q(T * nh * dq);  // [T, heads, nope | rope]
  if (s.q_lora_rank > 0) {
    const int64_t QL = s.q_lora_rank;
    std::vector<float> qa(T * QL);  // [T, q_lora_rank]
    gemm(x, w.q_a, nullptr, qa.data(), T, QL, H);
    norm(latent, qa.data(), w.q_a_norm, nullptr, qa.data(), T, QL);
    gemm(qa.data(), w.q_b, nullptr, q.data(), T, nh * dq, QL);
  } else {
    gemm(x, w.q, nullptr, q.data(), T, nh * dq, H);
  }
  std::vector<float> kv(T * row);  // [T, latent | k_pe]: the cache rows
  gemm(x, w.kv_a, nullptr, kv.data(), T, row, H);
  parallel_for(T, [&](int64_t t) { norm(latent, &kv[t * row], w.kv_a_norm, nullptr, &kv[t * row], 1, L); });
  rope_apply(q.data(), T, nh, dq, R, cos, sin, s.rope_interleaved, /*offset=*/dn);
  rope_apply(kv.data(), T, 1, row, R, cos, sin, s.rope_interleaved, /*offset=*/L);
  // An FP8 cache keeps each row value as e4m3(x / scale) * scale (one scale: the layer's K scale).
  if (fp8_scale > 0) e4m3_round(kv.data(), T * row, fp8_scale);
  write_cache_rows(b, kv.data(), cache, row);

  // Absorbed queries [T, heads, latent | rope]: q_nope through the head's key up-projection
  // W_uk (kv_b rows h*kvb .. h*kvb + nope), summed over the nope dims in order.
  std::vector<float> qabs(T * nh * row);
  parallel_for(T * nh, [&](int64_t th) {
    const int64_t h = th % nh;
    const float *qn = &q[th * dq];
    float *out = &qabs[th * row];
    std::fill(out, out + L, 0.0f);
    for (int64_t d = 0; d < dn; d++) {
      const float qd = qn[d], *wr = w.kv_b + (h * kvb + d) * L;
      for (int64_t c = 0; c < L; c++) out[c] += qd * wr[c];
    }
    memcpy(out + L, qn + dn, R * sizeof(float));
  });
  // MQA over the latent rows: keys [latent | k_pe], values the latent alone.
  std::vector<float> lat(T * nh * L);  // [T, heads, latent]
  paged_attention(b, qabs.data(), cache, cache, lat.data(), nh, 1, row, window, (float)s.softmax_scale(),
                  (float)s.attn_logit_softcap, /*v_dim=*/L);
  // Each head's value up-projection W_uv (kv_b rows h*kvb + nope ..) of its latent output.
  std::vector<float> o(T * nh * dv);  // [T, heads, v]
  parallel_for(T * nh, [&](int64_t th) {
    const int64_t h = th % nh;
    const float *l = &lat[th * L];
    for (int64_t v = 0; v < dv; v++) {
      const float *wr = w.kv_b + (h * kvb + dn + v) * L;
      float acc = 0;
      for (int64_t c = 0; c < L; c++) acc += wr[c] * l[c];
      o[th * dv + v] = acc;
    }
  });
  gemm(o.data(), w.o, w.o_bias, residual, T, H, nh * dv, /*accumulate=*/true);
}

}  // namespace cpu
}  // namespace fg
