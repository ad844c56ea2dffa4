// CPU twin of the CUDA smoke op, exported for test/gpu: out = x * rsqrt(mean(x^2) + eps) * w.
#include <cmath>

#include "core/status.h"

extern "C" fg_status fg_cpu_rmsnorm(const float *x, const float *w, float *out, int32_t rows,
                                    int32_t cols, float eps) {
  if (!x || !w || !out || rows < 0 || cols <= 0)
    return fg::fail(FG_ERR_INVALID_ARGUMENT, "fg_cpu_rmsnorm: bad arguments");
  for (int32_t r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * cols;
    double ss = 0;
    for (int32_t i = 0; i < cols; i++) ss += (double)xr[i] * xr[i];
    const float scale = 1.0f / std::sqrt((float)(ss / cols) + eps);
    for (int32_t i = 0; i < cols; i++) out[(size_t)r * cols + i] = xr[i] * scale * w[i];
  }
  return FG_OK;
}
