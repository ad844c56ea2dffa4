#include "cpu/rope.h"

#include <cmath>

#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {

std::vector<double> rope_inv_freq(const ModelSpec &s) {
  const int64_t half = s.rotary_dim / 2;
  std::vector<double> inv(half);
  for (int64_t i = 0; i < half; i++)
    inv[i] = 1.0 / std::pow(s.rope_theta, (double)(2 * i) / (double)s.rotary_dim);
  const RopeScaling &rs = s.rope_scaling;
  if (rs.kind == RopeScalingKind::Linear) {
    for (double &f : inv) f /= rs.factor;  // same as positions / factor
  } else if (rs.kind == RopeScalingKind::Llama3) {
    // transformers' _compute_llama3_parameters: long wavelengths are slowed by `factor`, short
    // ones kept, and the band between interpolates smoothly.
    const double old_ctx = rs.original_max_position_embeddings;
    const double low_freq_wavelen = old_ctx / rs.low_freq_factor;
    const double high_freq_wavelen = old_ctx / rs.high_freq_factor;
    for (double &f : inv) {
      const double wavelen = 2 * M_PI / f;
      if (wavelen > low_freq_wavelen) {
        f = f / rs.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const double smooth =
            (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = (1 - smooth) * f / rs.factor + smooth * f;
      }
    }
  }
  return inv;
}

void rope_tables(const std::vector<double> &inv_freq, const int32_t *positions, int64_t num_tokens,
                 std::vector<float> &cos, std::vector<float> &sin) {
  const int64_t half = (int64_t)inv_freq.size();
  cos.resize(num_tokens * half);
  sin.resize(num_tokens * half);
  for (int64_t t = 0; t < num_tokens; t++)
    for (int64_t i = 0; i < half; i++) {
      const double angle = (double)positions[t] * inv_freq[i];
      cos[t * half + i] = (float)std::cos(angle);
      sin[t * half + i] = (float)std::sin(angle);
    }
}

void rope_apply(float *x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                int64_t rotary_dim, const float *cos, const float *sin) {
  const int64_t half = rotary_dim / 2;
  parallel_for(num_tokens, [&](int64_t t) {
    const float *c = cos + t * half, *s = sin + t * half;
    for (int64_t h = 0; h < num_heads; h++) {
      float *v = x + (t * num_heads + h) * head_dim;
      for (int64_t i = 0; i < half; i++) {
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c[i] - x2 * s[i];
        v[i + half] = x2 * c[i] + x1 * s[i];
      }
    }
  });
}

}  // namespace cpu
}  // namespace fg
