// Bias rows on the device. Launches on `stream`; returns 0 or an fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

// y[r, :] += bias, y: [R, N] fp32.
int add_bias_rows(float *y, const float *bias, int R, int N, cudaStream_t stream, char *err);

}  // namespace fgcu
