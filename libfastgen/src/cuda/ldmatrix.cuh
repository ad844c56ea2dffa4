// ldmatrix: a warp loads tensor-core fragments of bf16 tiles from shared memory (sm_75+), shared by
// the mma.sync kernels (attention.cu, attention_mla_mma.cu). Each lane names one 16-byte row:
// lanes 8i .. 8i + 7 the eight rows of matrix i, which lands in register r[i] of every lane (lane
// l holding row l / 4, elements 2 (l % 4) and 2 (l % 4) + 1 of it; .trans: the transposed 8x8).
#pragma once
#include "cuda/cp_async.cuh"

namespace fgcu {

__device__ __forceinline__ void ldmatrix_x4(uint32_t *r, const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t *r, const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}

}  // namespace fgcu
