// Logit soft-capping on the device (Gemma 2's final_logit_softcapping). CPU twin: cpu/softcap.cpp
// (final logits). Launches on `stream`; returns 0 or an fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

// x[i] = cap * tanh(x[i] / cap) for i in [0, n), fp32 in place; cap > 0.
int softcap(float *x, size_t n, float cap, cudaStream_t stream, char *err);

}  // namespace fgcu
