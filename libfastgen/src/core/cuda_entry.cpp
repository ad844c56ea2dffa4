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

extern "C" fg_status fg_cuda_gemm_host(const float *x, const float *w, const float *bias, float *y,
                                       int32_t m, int32_t n, int32_t k, int32_t act, int32_t flags,
                                       float *ms) {
  const bool gated = act >= 0;
  if (!x || !w || !y || m <= 0 || n <= 0 || k <= 0 || act > 2 || (gated && n % 2) ||
      ((flags & FG_GEMM_ACCUMULATE) && !(flags & FG_GEMM_Y_F32)) ||
      (gated && (flags & (FG_GEMM_Y_F32 | FG_GEMM_ACCUMULATE | FG_GEMM_CUBLASLT))))
    return fg::fail(FG_ERR_INVALID_ARGUMENT, "fg_cuda_gemm_host: bad arguments");
  char err[512] = "";
  const int rc = fgcu_gemm_host(x, w, bias, y, m, n, k, act, flags, ms, err);
  if (rc != 0) return fg::fail((fg_status)rc, "%s", err);
  return FG_OK;
}

extern "C" fg_status fg_cuda_fp8_linear_host(const float *x, int32_t m, int32_t k, const uint8_t *w, int32_t n,
                                             const float *scales, int32_t kblock, float input_scale,
                                             int32_t out_mode, int32_t path, float *y, int32_t *path_used) {
  if (!x || !w || !scales || !y || !path_used || m < 1 || n < 1 || k < 16 || k % 16 != 0 || kblock < 1 ||
      (kblock < k && kblock % 16 != 0) || kblock > k || out_mode < 0 || out_mode > 2 || path < 0 || path > 3 ||
      !(input_scale >= 0))
    return fg::fail(FG_ERR_INVALID_ARGUMENT, "fg_cuda_fp8_linear_host: bad arguments");
  char err[512] = "";
  if (const int rc = fgcu_fp8_linear_host(x, m, k, w, n, scales, kblock, input_scale, out_mode, path, y, path_used,
                                          err))
    return fg::fail((fg_status)rc, "%s", err);
  return FG_OK;
}
