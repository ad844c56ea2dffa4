// What the CUDA backend is told of the model: the parsed spec as cuda/cuda_api.h's fgcu_model,
// after refusing the spec features the device forward pass has no kernels for yet.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rope_freq.h"
#include "core/spec.h"
#include "cuda/cuda_api.h"

namespace fg {

// Throws FG_ERR_UNSUPPORTED for a feature the device does not run (before any device work, so a
// caller can fall back to the CPU backend).
void check_cuda_runs(const ModelSpec &spec);

// Per-layer flags fgcu_model points at: one byte per layer, filled by cuda_model.
struct CudaLayerFlags {
  std::vector<uint8_t> sliding;  // sliding-window attention
  std::vector<uint8_t> dense;    // a dense MLP in a MoE model (DeepSeek's first_k_dense_replace)
};

// The model for fgcu_engine_create. Its pointers point into rope and into *flags (filled here),
// which must live until that call returns (the device side copies them).
fgcu_model cuda_model(const ModelSpec &spec, const RopeFreqs &rope, CudaLayerFlags *flags);

}  // namespace fg
