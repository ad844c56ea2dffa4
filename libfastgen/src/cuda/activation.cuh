// MLP activations on the device. CPU twin: cpu/activation.cpp. Launches on `stream`; returns 0 or an
// fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

enum ActKind { kGatedSilu, kGatedGelu, kGatedGeluTanh, kGelu, kGeluTanh, kRelu };

// gated:  in [T, 2I], columns interleaved (gate_i, up_i) -> out[t, i] = act(gate + gb) * (up + ub)
// plain:  in [T, I]                                     -> out[t, i] = act(in + b)
// bias: [2I] interleaved like the columns, or [I]; may be null.
int activation(const bf16 *in, const float *bias, bf16 *out, int T, int I, ActKind kind,
               cudaStream_t stream, char *err);

}  // namespace fgcu
