// The decoder's MLP: gated (SiLU/GELU) or plain (GELU/ReLU), with optional biases.
#pragma once
#include <cstdint>

#include "core/spec.h"
#include "core/weights.h"

namespace fg {
namespace cpu {

// residual: [T, hidden] += down(act(gate(x)) * up(x))  (gated)  or  down(act(up(x)))  (plain).
// x: [T, hidden]. GELU is the exact erf form.
void mlp_add(const ModelSpec &spec, const LayerWeights &w, const float *x, float *residual,
             int64_t num_tokens);

}  // namespace cpu
}  // namespace fg
