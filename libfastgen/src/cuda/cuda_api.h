// Entry points of the CUDA backend as seen from the C++ core. Implemented by the .cu files
// (nvcc, libstdc++) or by no_cuda.cpp; plain C types only, since the two sides link different
// C++ standard libraries. Each returns 0 on success or writes a message to `err` (size 512).
#pragma once
#include <stdint.h>

extern "C" {
int32_t fgcu_device_count(void);
// Smoke op: RMSNorm over host buffers on device 0. x, out: [rows, cols]; w: [cols].
int fgcu_rmsnorm_host(const float *x, const float *w, float *out, int32_t rows, int32_t cols,
                      float eps, char *err);
}
