// Host <-> device staging for the test hooks (hooks.cu, op_hooks.cu): a Scope owns one stream and
// every buffer a hook allocates, uploads host arrays as fp32, bf16 (rounded to nearest even),
// int32 or fp64, and brings results back as floats. Plain C allocations only (see cuda_api.h).
#pragma once
#include <string.h>

#include "cuda/engine.cuh"

namespace fgcu {

inline uint16_t to_bf16_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float from_bf16_bits(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// 0, or FG_ERR_DEVICE with err set when no CUDA device is visible.
inline int need_device(char *err) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    snprintf(err, 512, "no CUDA device is visible (driver missing or no GPU)");
    return FG_ERR_DEVICE;
  }
  return 0;
}

// Frees everything it holds when it goes out of scope (after waiting for its stream).
struct Scope {
  static constexpr int kMaxBufs = 32;
  cudaStream_t stream = nullptr;
  void *dev[kMaxBufs] = {};
  void *host[kMaxBufs] = {};
  int n = 0, nh = 0;
  MetaBuf meta;
  cudaError_t error = cudaSuccess;  // the first failed allocation or copy of the helpers below

  ~Scope() {
    if (stream) cudaStreamSynchronize(stream);
    for (int i = 0; i < n; i++) cudaFree(dev[i]);
    for (int i = 0; i < nh; i++) free(host[i]);
    release(meta);
    if (stream) cudaStreamDestroy(stream);
    cudaGetLastError();
  }
  // 0, or the status of `error` with err naming what failed.
  int status(const char *what, char *err) const {
    if (error == cudaSuccess) return 0;
    snprintf(err, 512, "%s: %s", what, cudaGetErrorString(error));
    return error == cudaErrorMemoryAllocation ? FG_ERR_OUT_OF_MEMORY : FG_ERR_DEVICE;
  }
  void *dalloc(size_t bytes) {
    void *p = nullptr;
    if (n < kMaxBufs && cudaMalloc(&p, bytes ? bytes : 16) == cudaSuccess) return dev[n++] = p;
    cudaGetLastError();
    if (error == cudaSuccess) error = cudaErrorMemoryAllocation;
    return nullptr;
  }
  void *halloc(size_t bytes) {
    void *p = nh < kMaxBufs ? malloc(bytes ? bytes : 16) : nullptr;
    if (!p) {
      if (error == cudaSuccess) error = cudaErrorMemoryAllocation;
      return nullptr;
    }
    host[nh++] = p;
    return p;
  }
  void copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (!dst || !src || bytes == 0 || error != cudaSuccess) return;
    const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, stream);
    if (e != cudaSuccess) error = e;
  }
  // Device copies of host arrays; a null host array stays null.
  float *f32(const float *h, size_t count) { return (float *)up(h, count * 4); }
  int *i32(const int32_t *h, size_t count) { return (int *)up(h, count * 4); }
  double *f64(const double *h, size_t count) { return (double *)up(h, count * 8); }
  bf16 *bf(const float *h, size_t count) {
    if (!h) return nullptr;
    uint16_t *s = (uint16_t *)halloc(count * 2);
    if (!s) return nullptr;
    for (size_t i = 0; i < count; i++) s[i] = to_bf16_bits(h[i]);
    return (bf16 *)up(s, count * 2);
  }
  void *up(const void *h, size_t bytes) {
    if (!h) return nullptr;
    void *d = dalloc(bytes);
    copy(d, h, bytes, cudaMemcpyHostToDevice);
    return d;
  }
  // Results back into host floats (waits for the stream); a null host array takes nothing.
  void down_f32(float *h, const float *d, size_t count) {
    copy(h, d, count * 4, cudaMemcpyDeviceToHost);
    sync();
  }
  void down_i32(int32_t *h, const int *d, size_t count) {
    copy(h, d, count * 4, cudaMemcpyDeviceToHost);
    sync();
  }
  void down_bf(float *h, const bf16 *d, size_t count) {
    if (!h) return;
    uint16_t *s = (uint16_t *)halloc(count * 2);
    copy(s, d, count * 2, cudaMemcpyDeviceToHost);
    sync();
    if (error != cudaSuccess) return;
    for (size_t i = 0; i < count; i++) h[i] = from_bf16_bits(s[i]);
  }
  void sync() {
    if (error != cudaSuccess) return;
    const cudaError_t e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess) error = e;
  }
};

}  // namespace fgcu
