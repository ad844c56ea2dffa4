// Row norms of the decoder (RMSNorm, LayerNorm); rmsnorm.cpp exports the RMS one for test/gpu.
#pragma once
#include <cstdint>

#include "core/spec.h"

namespace fg {
namespace cpu {

// How every norm of a model computes: one per spec (norm_params), shared by the layer norms,
// the final norm and the per-head q/k norms.
struct NormParams {
  NormKind kind = NormKind::Rms;
  float eps = 1e-5f;
  float weight_offset = 0;  // RMSNorm multiplies by (offset + w), summed in fp32 (Gemma's 1 + w)
};

NormParams norm_params(const ModelSpec &spec);

// out, x: [rows, cols]; w, b: [cols] (b only for LayerNorm, may be null). out may alias x.
//   rms:   x * rsqrt(mean(x^2) + eps) * (weight_offset + w)
//   layer: (x - mean) * rsqrt(var + eps) * w + b
void norm(const NormParams &p, const float *x, const float *w, const float *b, float *out,
          int64_t rows, int64_t cols);

}  // namespace cpu
}  // namespace fg
