// C ABI wrappers over the CUDA backend's entry points (see cuda/cuda_api.h).
#include "core/status.h"
#include "cuda/cuda_api.h"

extern "C" int32_t fg_cuda_device_count(void) { return fgcu_device_count(); }

extern "C" fg_status fg_cuda_rmsnorm_host(const float *x, const float *w, float *out, int32_t rows,
                                          int32_t cols, float eps) {
  if (!x || !w || !out || rows < 0 || cols <= 0)
    return fg::fail(FG_ERR_INVALID_ARGUMENT, "fg_cuda_rmsnorm_host: bad arguments");
  char err[512] = "";
  if (fgcu_rmsnorm_host(x, w, out, rows, cols, eps, err) != 0) {
#ifdef FG_WITH_CUDA
    return fg::fail(FG_ERR_DEVICE, "%s", err);
#else
    return fg::fail(FG_ERR_UNSUPPORTED, "%s", err);
#endif
  }
  return FG_OK;
}
