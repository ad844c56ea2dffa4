// Helpers shared by the CUDA translation units: status plumbing, bf16 conversions, block
// reductions. No C++ standard library here (see cuda_api.h): plain C and CUDA only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/knobs.h"
#include "fastgen.h"

namespace fgcu {

typedef __nv_bfloat16 bf16;

// A failing CUDA call inside a function returning an fg_status-valued int: record where, return.
// `err` (char[512]) must be in scope.
#define FGCU_TRY(call)                                                                          \
  do {                                                                                          \
    cudaError_t e_ = (call);                                                                    \
    if (e_ != cudaSuccess) {                                                                    \
      snprintf(err, 512, "%s: %s (%s:%d)", #call, cudaGetErrorString(e_), __FILE__, __LINE__);  \
      return e_ == cudaErrorMemoryAllocation ? FG_ERR_OUT_OF_MEMORY : FG_ERR_DEVICE;            \
    }                                                                                           \
  } while (0)

// After a kernel launch: a bad configuration shows up here, an execution fault at the next sync.
#define FGCU_LAUNCHED(what)                                                                 \
  do {                                                                                      \
    cudaError_t e_ = cudaGetLastError();                                                    \
    if (e_ != cudaSuccess) {                                                                \
      snprintf(err, 512, "kernel %s: %s", what, cudaGetErrorString(e_));                    \
      return FG_ERR_DEVICE;                                                                 \
    }                                                                                       \
  } while (0)

// Propagates a non-zero status from a helper that already wrote `err`.
#define FGCU_CHECK(expr)       \
  do {                         \
    int rc_ = (expr);          \
    if (rc_ != 0) return rc_;  \
  } while (0)

inline int ceil_div(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 to_bf(float x) { return __float2bfloat16_rn(x); }
// Two floats rounded to bf16 in one register (lo in the low half), as tensor-core fragments hold them.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t u;
  memcpy(&u, &v, 4);
  return u;
}
// log2(e): exp(x) = 2^(x log2 e) in the attention kernels' softmax.
constexpr float kLog2e = 1.4426950408889634f;

// The attention kernels' tensor-core step (gemv_small.cuh keeps its own, non-volatile form):
// d[16x8] += a[16x16] * b[16x8], bf16 in, fp32 accumulate.
__device__ __forceinline__ void mma16816(float *d, const uint32_t *a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// 2^x, flushing results below 2^-126 to zero (one MUFU op; such weights vanish in bf16 anyway).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Sum over a block of exactly kThreads threads (a multiple of 32, at most 1024). `scratch`:
// __shared__ T[32]. Every thread gets the total. Safe to call repeatedly (syncs on entry).
template <typename T>
__device__ __forceinline__ T block_sum(T v, T *scratch) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < nwarps; w++) total += scratch[w];
  return total;
}

__device__ __forceinline__ float block_max(float v, float *scratch) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < nwarps; w++) m = fmaxf(m, scratch[w]);
  return m;
}

// The 8 bf16 of a 16-byte word as floats.
__device__ __forceinline__ void unpack8(const uint4 &u, float *out) {
  const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 f = __bfloat1622float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}
// 8 bf16 <-> 8 floats through one 16-byte access. The word is loaded into a local first: passing
// the dereference straight to unpack8 (a const reference) made ptxas stop hoisting the one-token
// GEMVs' x loads ahead of their FMAs (gemv2_kernel 60 -> 48 registers, each 16-byte x load then
// waited for in turn).
__device__ __forceinline__ void load8(const bf16 *p, float *out) {
  const uint4 u = *reinterpret_cast<const uint4 *>(p);
  unpack8(u, out);
}
__device__ __forceinline__ void store8(bf16 *p, const float *v) {
  uint4 u;
  __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
  for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
  *reinterpret_cast<uint4 *>(p) = u;
}

// Activations of the MLP; kind follows fgcu::ActKind (ops.cuh): 0 silu, 1 gelu (erf), 2 gelu
// tanh-approx (gated), 3 gelu, 4 gelu tanh, 5 relu (plain). CPU twins in cpu/activation.cpp.
__device__ __forceinline__ float activate(int kind, float x) {
  switch (kind) {
    case 0: return x / (1.f + __expf(-x));
    case 1: case 3: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case 2: case 4: {
      const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
      return x / (1.f + __expf(-2.f * u));
    }
    default: return x > 0.f ? x : 0.f;
  }
}

// Programmatic dependent launch (sm_90+). A kernel started with launch_k may begin while the
// kernel before it in the stream is still running (CUDA graphs keep the edge): before pdl_wait()
// it may only read what no kernel of the step writes (weights); after it, everything earlier in
// the stream has finished and is visible. Every kernel launched through launch_k must call
// pdl_wait() in every thread block before touching activations, even one that has nothing to
// prefetch, or a later kernel could overtake an earlier one. pdl_launch_dependents() lets the
// next kernel's blocks be scheduled (they wait in their own pdl_wait) before this one ends.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
// True on devices of compute capability 9.0+ unless FASTGEN_PDL=0 (per current device, cached).
bool pdl_enabled();


// kernel<<<grid, block, smem, stream>>>(args...), with programmatic stream serialization where
// pdl_enabled(). Errors surface through cudaGetLastError (FGCU_LAUNCHED), as with <<<>>>.
template <typename... KArgs, typename... Args>
inline void launch_k(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                     Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

// A device buffer that only grows; growing frees the old one, so grow it while the stream is
// idle (engine.cu: ensure, release).
struct DevBuf {
  void *p = nullptr;
  size_t bytes = 0;
};
int ensure(DevBuf &b, size_t bytes, const char *what, char *err);
void release(DevBuf &b);

}  // namespace fgcu
