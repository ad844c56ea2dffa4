// RMSNorm: out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w. One block per row.
// CPU twin: libfastgen/src/cpu/rmsnorm.cpp (fg_cpu_rmsnorm); test: test/gpu/rmsnorm.test.ts.
#include <cuda_runtime.h>
#include <stdio.h>

#include "cuda/cuda_api.h"

namespace {

constexpr int kThreads = 256;

__device__ float block_sum(float v) {
  __shared__ float partial[kThreads / 32];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffff, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < kThreads / 32 ? partial[lane] : 0.f;
  if (warp == 0)
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffff, v, off);
  __shared__ float total;
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  return total;
}

// x, out: [rows, cols]; w: [cols]
__global__ void rmsnorm_kernel(const float *__restrict__ x, const float *__restrict__ w,
                               float *__restrict__ out, int cols, float eps) {
  const float *xr = x + (size_t)blockIdx.x * cols;
  float *outr = out + (size_t)blockIdx.x * cols;
  float ss = 0.f;
  for (int i = threadIdx.x; i < cols; i += kThreads) ss += xr[i] * xr[i];
  const float scale = rsqrtf(block_sum(ss) / cols + eps);
  for (int i = threadIdx.x; i < cols; i += kThreads) outr[i] = xr[i] * scale * w[i];
}

int check(cudaError_t e, const char *what, char *err) {
  if (e == cudaSuccess) return 0;
  snprintf(err, 512, "%s: %s", what, cudaGetErrorString(e));
  return 1;
}

}  // namespace

extern "C" int32_t fgcu_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

extern "C" int fgcu_rmsnorm_host(const float *x, const float *w, float *out, int32_t rows,
                                 int32_t cols, float eps, char *err) {
  const size_t xbytes = (size_t)rows * cols * sizeof(float), wbytes = (size_t)cols * sizeof(float);
  float *dx = nullptr, *dw = nullptr, *dout = nullptr;
  int rc = check(cudaMalloc(&dx, xbytes), "cudaMalloc x", err) ||
           check(cudaMalloc(&dw, wbytes), "cudaMalloc w", err) ||
           check(cudaMalloc(&dout, xbytes), "cudaMalloc out", err) ||
           check(cudaMemcpy(dx, x, xbytes, cudaMemcpyHostToDevice), "copy x", err) ||
           check(cudaMemcpy(dw, w, wbytes, cudaMemcpyHostToDevice), "copy w", err);
  if (!rc) {
    rmsnorm_kernel<<<rows, kThreads>>>(dx, dw, dout, cols, eps);
    rc = check(cudaGetLastError(), "rmsnorm_kernel launch", err) ||
         check(cudaMemcpy(out, dout, xbytes, cudaMemcpyDeviceToHost), "copy out", err);
  }
  cudaFree(dx);
  cudaFree(dw);
  cudaFree(dout);
  return rc;
}
