// The MLP on the CPU: its GEMMs (cpu/gemm.h) around the activation (cpu/activation.h).
#include "cpu/mlp.h"

#include <vector>

#include "cpu/activation.h"
#include "cpu/gemm.h"

namespace fg {
namespace cpu {

void mlp(const ModelSpec &s, const MlpWeights &w, int64_t width, const float *x, float *out,
         int64_t T, bool accumulate) {
  const int64_t H = s.hidden_size, I = width, n = T * I;
  if (T == 0) return;
  std::vector<float> up(n);  // [T, intermediate]
  gemm(x, w.up, w.up_bias, up.data(), T, I, H);
  float *u = up.data();
  std::vector<float> gate(s.gated() ? n : 0);  // [T, intermediate]
  if (s.gated()) gemm(x, w.gate, w.gate_bias, gate.data(), T, I, H);
  activate(s.mlp, gate.data(), u, n);
  gemm(up.data(), w.down, w.down_bias, out, T, H, I, accumulate);
}

}  // namespace cpu
}  // namespace fg
