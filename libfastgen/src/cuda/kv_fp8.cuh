// The KV cache's element types on the device: bf16, or FP8 E4M3 (--kv-cache-dtype fp8) holding
// e4m3(x / scale) with one scale per layer for K and one for V (the latent rows of MLA: K's).
// CPU twin: core/fp8.h f32_to_e4m3 / e4m3_round, which these match bit for bit:
//   write  e4m3(x / scale): the quotient in fp32 (IEEE division), rounded to nearest, ties to
//          even, |q| > 448 and +-inf saturating to +-448 (cvt.rn.satfinite.e4m3x2.f32 on sm_89+;
//          cuda_fp8.h's emulation below). x is the fp32 value the kernel computed, not its bf16.
//   read   e4m3 -> bf16 (exact: 4 significant bits, exponents 2^-9 .. 2^8) for the tensor cores,
//          or -> fp32; the scales are applied once (scores, outputs), never per element.
// Kernels are templated on the element type KV (bf16 or uint8_t holding E4M3 bytes), so one
// source serves both caches; the KV pointers of the argument structs stay typed bf16 and are
// reinterpreted (kv_ptr) when the flag says FP8.
#pragma once
#include <cuda_fp8.h>

#include "cuda/common.cuh"

namespace fgcu {

typedef uint8_t e4m3;  // one E4M3 byte in the cache

template <typename KV>
constexpr bool kv_is_fp8() {
  return sizeof(KV) == 1;
}

// The pool pointer as the element type the cache holds.
template <typename KV, typename T>
__host__ __device__ __forceinline__ KV *kv_ptr(T *p) {
  return reinterpret_cast<KV *>(p);
}
template <typename KV, typename T>
__host__ __device__ __forceinline__ const KV *kv_ptr(const T *p) {
  return reinterpret_cast<const KV *>(p);
}

// x as the cache stores it (scale unused for bf16).
__device__ __forceinline__ bf16 kv_encode(float x, float, bf16 *) { return to_bf(x); }
__device__ __forceinline__ e4m3 kv_encode(float x, float scale, e4m3 *) {
  return (e4m3)__nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3);
}
template <typename KV>
__device__ __forceinline__ void kv_store(KV *p, float x, float scale) {
  *p = kv_encode(x, scale, p);
}
// 8 values to 8 consecutive elements (16 bytes bf16, 8 bytes E4M3; aligned).
__device__ __forceinline__ void kv_store8(bf16 *p, const float *v, float) { store8(p, v); }
__device__ __forceinline__ void kv_store8(e4m3 *p, const float *v, float scale) {
  uint32_t w[2] = {0u, 0u};
#pragma unroll
  for (int i = 0; i < 8; i++) w[i / 4] |= (uint32_t)kv_encode(v[i], scale, p) << (8 * (i % 4));
  *reinterpret_cast<uint2 *>(p) = make_uint2(w[0], w[1]);
}

// Two E4M3 bytes (the first in bits 0..7) -> bf16x2 bits, element order kept.
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2(uint32_t two) {
  const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(two & 0xffffu), __NV_E4M3);
  const float2 f = __half22float2(__half2(r));
  const __nv_bfloat162 b = __floats2bfloat162_rn(f.x, f.y);
  return *reinterpret_cast<const uint32_t *>(&b);
}
// 8 E4M3 bytes -> 8 bf16 (16 bytes), element order kept.
__device__ __forceinline__ uint4 e4m3x8_to_bf16x8(uint2 v) {
  return make_uint4(e4m3x2_to_bf16x2(v.x), e4m3x2_to_bf16x2(v.x >> 16), e4m3x2_to_bf16x2(v.y),
                    e4m3x2_to_bf16x2(v.y >> 16));
}

// Reads of cached values as fp32 (the scale not applied).
__device__ __forceinline__ float kv_to_f(bf16 x) { return to_f(x); }
__device__ __forceinline__ float kv_to_f(e4m3 x) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)x, __NV_E4M3)));
}
// 8 consecutive elements (aligned: 16 bytes bf16, 8 bytes E4M3).
__device__ __forceinline__ void kv_load8(const bf16 *p, float *out) { load8(p, out); }
__device__ __forceinline__ void kv_load8(const e4m3 *p, float *out) {
  const uint2 u = *reinterpret_cast<const uint2 *>(p);
  const uint32_t w[2] = {u.x, u.y};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)((w[i / 2] >> (16 * (i % 2))) & 0xffffu),
                                                     __NV_E4M3);
    const float2 f = __half22float2(__half2(r));
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}
// 2 consecutive elements (aligned: 4 bytes bf16, 2 bytes E4M3).
__device__ __forceinline__ float2 kv_load2(const bf16 *p) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(p));
}
__device__ __forceinline__ float2 kv_load2(const e4m3 *p) {
  const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2(*reinterpret_cast<const __nv_fp8x2_storage_t *>(p), __NV_E4M3);
  return __half22float2(__half2(r));
}

}  // namespace fgcu
