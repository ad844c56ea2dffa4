// Row norms of the decoder (RMSNorm, LayerNorm); rmsnorm.cpp exports the RMS one for test/gpu.
#pragma once
#include <cstdint>

#include "core/spec.h"

namespace fg {
namespace cpu {

// out, x: [rows, cols]; w, b: [cols] (b only for LayerNorm, may be null). out may alias x.
//   rms:   x * rsqrt(mean(x^2) + eps) * w
//   layer: (x - mean) * rsqrt(var + eps) * w + b
void norm(NormKind kind, const float *x, const float *w, const float *b, float *out, int64_t rows,
          int64_t cols, float eps);

}  // namespace cpu
}  // namespace fg
