// MLP activations on the CPU, fp32: the twin of cuda/activation.cu. GELU is the exact erf form;
// the *_tanh kinds use the tanh approximation.
#pragma once
#include <cstdint>

#include "core/spec.h"

namespace fg {
namespace cpu {

// Gated kinds: up[i] = act(gate[i]) * up[i]; plain kinds: up[i] = act(up[i]) (gate unused).
// gate, up: [n].
void activate(MlpKind kind, const float *gate, float *up, int64_t n);

}  // namespace cpu
}  // namespace fg
