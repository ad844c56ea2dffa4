// fg_cpu_rmsnorm: the CPU backend's RMSNorm (norm.cpp), exported as the twin of
// fg_cuda_rmsnorm_host (test/gpu/rmsnorm.test.ts): out = x * rsqrt(mean(x^2) + eps) * w.
#include "core/status.h"
#include "cpu/norm.h"

extern "C" fg_status fg_cpu_rmsnorm(const float *x, const float *w, float *out, int32_t rows,
                                    int32_t cols, float eps) {
  if (!x || !w || !out || rows < 0 || cols <= 0)
    return fg::fail(FG_ERR_INVALID_ARGUMENT, "fg_cpu_rmsnorm: bad arguments");
  fg::cpu::norm({fg::NormKind::Rms, eps, 0.0f}, x, w, nullptr, out, rows, cols);
  return FG_OK;
}
