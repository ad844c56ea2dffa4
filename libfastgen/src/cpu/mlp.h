// The decoder's MLP: gated (SiLU/GELU) or plain (GELU/ReLU), with optional biases; the dense
// layer's, each MoE expert's and the shared expert's (moe.h) are the same code at their widths.
#pragma once
#include <cstdint>

#include "core/spec.h"
#include "core/weights.h"

namespace fg {
namespace cpu {

// out: [T, hidden] (+)= down(act(gate(x)) * up(x))  (gated)  or  down(act(up(x)))  (plain).
// x: [T, hidden]; gate, up: [width, hidden]; down: [hidden, width]. The width is the caller's:
// intermediate_size (dense), moe_intermediate_size (an expert), shared_expert_intermediate_size.
// accumulate adds to out (a residual) instead of overwriting it.
// GELU is the exact erf form; the *_tanh kinds use the tanh approximation.
void mlp(const ModelSpec &spec, const MlpWeights &w, int64_t width, const float *x, float *out,
         int64_t num_tokens, bool accumulate);

// residual: [T, hidden] += the dense MLP of layer weights w (see mlp()).
inline void mlp_add(const ModelSpec &spec, const LayerWeights &w, const float *x, float *residual,
                    int64_t num_tokens) {
  mlp(spec, w.mlp(), spec.intermediate_size, x, residual, num_tokens, /*accumulate=*/true);
}

}  // namespace cpu
}  // namespace fg
