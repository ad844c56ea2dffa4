// Asynchronous global -> shared copies (cp.async, sm_80+), shared by the attention kernels
// (attention.cu, attention_mla.cu).
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

// 16-byte async copy; src_ok == false fills zeros (src must still be a valid address).
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool src_ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_ok ? 16 : 0));
}
// 8-byte async copy (through L1: .cg takes 16 bytes only), zero fill as above.
__device__ __forceinline__ void cp_async8(void *dst, const void *src, bool src_ok) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_ok ? 8 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace fgcu
