// The decoder's MLP: gated (SiLU/GELU) or plain (GELU/ReLU), with optional biases; the dense
// layer's and each MoE expert's (moe.h) are the same code.
#pragma once
#include <cstdint>

#include "core/spec.h"
#include "core/weights.h"

namespace fg {
namespace cpu {

// out: [T, hidden] (+)= down(act(gate(x)) * up(x))  (gated)  or  down(act(up(x)))  (plain).
// x: [T, hidden]. accumulate adds to out (a residual) instead of overwriting it.
// GELU is the exact erf form; the *_tanh kinds use the tanh approximation.
void mlp(const ModelSpec &spec, const MlpWeights &w, const float *x, float *out,
         int64_t num_tokens, bool accumulate);

// residual: [T, hidden] += the dense MLP of layer weights w (see mlp()).
inline void mlp_add(const ModelSpec &spec, const LayerWeights &w, const float *x, float *residual,
                    int64_t num_tokens) {
  mlp(spec, w.mlp(), x, residual, num_tokens, /*accumulate=*/true);
}

}  // namespace cpu
}  // namespace fg
