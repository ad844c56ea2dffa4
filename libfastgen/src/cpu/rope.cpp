#include "cpu/rope.h"

#include <cmath>

#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {

void rope_tables(const std::vector<double> &inv_freq, double attention_factor,
                 const int32_t *positions, int64_t num_tokens, std::vector<float> &cos,
                 std::vector<float> &sin) {
  const int64_t half = (int64_t)inv_freq.size();
  cos.resize(num_tokens * half);
  sin.resize(num_tokens * half);
  for (int64_t t = 0; t < num_tokens; t++)
    for (int64_t i = 0; i < half; i++) {
      const double angle = (double)positions[t] * inv_freq[i];
      cos[t * half + i] = (float)(std::cos(angle) * attention_factor);
      sin[t * half + i] = (float)(std::sin(angle) * attention_factor);
    }
}

void rope_apply(float *x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                int64_t rotary_dim, const float *cos, const float *sin, bool interleaved,
                int64_t offset) {
  const int64_t half = rotary_dim / 2;
  // pair i = dims (a * i, a * i + b): rotate_half a = 1, b = half; interleaved a = 2, b = 1
  const int64_t a = interleaved ? 2 : 1, b = interleaved ? 1 : half;
  parallel_for(num_tokens, [&](int64_t t) {
    const float *c = cos + t * half, *s = sin + t * half;
    for (int64_t h = 0; h < num_heads; h++) {
      float *v = x + (t * num_heads + h) * head_dim + offset;
      for (int64_t i = 0; i < half; i++) {
        const float x1 = v[a * i], x2 = v[a * i + b];
        v[a * i] = x1 * c[i] - x2 * s[i];
        v[a * i + b] = x2 * c[i] + x1 * s[i];
      }
    }
  });
}

}  // namespace cpu
}  // namespace fg
