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

void mlp_add(const ModelSpec &s, const LayerWeights &w, const float *x, float *residual,
             int64_t T) {
  const int64_t H = s.hidden_size, I = s.intermediate_size, n = T * I;
  std::vector<float> up(n);  // [T, intermediate]
  gemm(x, w.up, w.up_bias, up.data(), T, I, H);
  if (s.gated()) {
    std::vector<float> gate(n);  // [T, intermediate]
    gemm(x, w.gate, w.gate_bias, gate.data(), T, I, H);
    float *u = up.data();
    const float *g = gate.data();
    if (s.mlp == MlpKind::GatedSilu) elementwise(n, [&](int64_t i) { u[i] *= silu(g[i]); });
    else elementwise(n, [&](int64_t i) { u[i] *= gelu(g[i]); });
  } else {
    float *u = up.data();
    if (s.mlp == MlpKind::Gelu) elementwise(n, [&](int64_t i) { u[i] = gelu(u[i]); });
    else elementwise(n, [&](int64_t i) { u[i] = relu(u[i]); });
  }
  gemm(up.data(), w.down, w.down_bias, residual, T, H, I, /*accumulate=*/true);
}

}  // namespace cpu
}  // namespace fg
