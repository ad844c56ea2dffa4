// Logit soft-capping on the CPU, fp32 (Gemma 2's final_logit_softcapping): the twin of
// cuda/softcap.cu. Attention's score capping lives in cpu/attention.cpp.
#pragma once
#include <cstdint>

namespace fg {
namespace cpu {

// x [rows, cols] = cap * tanh(x / cap), in place; cap > 0.
void softcap(float *x, int64_t rows, int64_t cols, float cap);

}  // namespace cpu
}  // namespace fg
