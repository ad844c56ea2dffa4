#include "cpu/activation.h"

#include <cmath>

#include "cpu/fast_math.h"
#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {
namespace {

inline float silu(float x) { return x / (1.0f + fast_exp(-x)); }
inline float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }
// 0.5 x (1 + tanh(u)) == x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): no cancellation
// near 0 and no libm call.
inline float gelu_tanh(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x / (1.0f + fast_exp(-2.0f * u));
}
inline float relu(float x) { return x > 0 ? x : 0.0f; }

// Elementwise over n values in parallel chunks.
template <class F>
void elementwise(int64_t n, F f) {
  const int64_t chunk = 16384;
  parallel_for((n + chunk - 1) / chunk, [&](int64_t c) {
    for (int64_t i = c * chunk; i < n && i < (c + 1) * chunk; i++) f(i);
  });
}

}  // namespace

void activate(MlpKind kind, const float *g, float *u, int64_t n) {
  switch (kind) {
    case MlpKind::GatedSilu: elementwise(n, [&](int64_t i) { u[i] *= silu(g[i]); }); break;
    case MlpKind::GatedGelu: elementwise(n, [&](int64_t i) { u[i] *= gelu(g[i]); }); break;
    case MlpKind::GatedGeluTanh: elementwise(n, [&](int64_t i) { u[i] *= gelu_tanh(g[i]); }); break;
    case MlpKind::Gelu: elementwise(n, [&](int64_t i) { u[i] = gelu(u[i]); }); break;
    case MlpKind::GeluTanh: elementwise(n, [&](int64_t i) { u[i] = gelu_tanh(u[i]); }); break;
    case MlpKind::Relu: elementwise(n, [&](int64_t i) { u[i] = relu(u[i]); }); break;
  }
}

}  // namespace cpu
}  // namespace fg
