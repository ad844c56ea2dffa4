#include "cpu/mlp.h"

#include <cmath>
#include <vector>

#include "cpu/fast_math.h"
#include "cpu/gemm.h"
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

void mlp(const ModelSpec &s, const MlpWeights &w, int64_t width, const float *x, float *out,
         int64_t T, bool accumulate) {
  const int64_t H = s.hidden_size, I = width, n = T * I;
  if (T == 0) return;
  std::vector<float> up(n);  // [T, intermediate]
  gemm(x, w.up, w.up_bias, up.data(), T, I, H);
  float *u = up.data();
  if (s.gated()) {
    std::vector<float> gate(n);  // [T, intermediate]
    gemm(x, w.gate, w.gate_bias, gate.data(), T, I, H);
    const float *g = gate.data();
    switch (s.mlp) {
      case MlpKind::GatedSilu: elementwise(n, [&](int64_t i) { u[i] *= silu(g[i]); }); break;
      case MlpKind::GatedGelu: elementwise(n, [&](int64_t i) { u[i] *= gelu(g[i]); }); break;
      default: elementwise(n, [&](int64_t i) { u[i] *= gelu_tanh(g[i]); }); break;
    }
  } else {
    switch (s.mlp) {
      case MlpKind::Gelu: elementwise(n, [&](int64_t i) { u[i] = gelu(u[i]); }); break;
      case MlpKind::GeluTanh: elementwise(n, [&](int64_t i) { u[i] = gelu_tanh(u[i]); }); break;
      default: elementwise(n, [&](int64_t i) { u[i] = relu(u[i]); }); break;
    }
  }
  gemm(up.data(), w.down, w.down_bias, out, T, H, I, accumulate);
}

}  // namespace cpu
}  // namespace fg
