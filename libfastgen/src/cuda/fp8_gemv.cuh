// The FP8 weight-streaming GEMV (fp8_gemm.cuh's path for M <= 8): y[M, N] (+)= x[M, K] · w^T with
// w FP8 E4M3 [N, K] (weight.cuh), x bf16, fp32 accumulation, weight-only (x is not quantized).
//
//   one warp per R output rows (R = 2 for wide N and for gated pairs, else 1); lane l reads the
//   16-byte chunks l, l + 32, ... of each row (16 weights each, 8 loads in flight per lane; narrow
//   rows longer than one round issue the next round before multiplying this one, at M <= 2),
//   converts them in registers (cvt e4m3x2 -> f16x2 -> f32) and multiplies them by the M rows of
//   x (read through L1). Per-channel scales multiply the row's sum once; K-segment scales
//   (kblock < K, a multiple of 16) multiply each chunk's partial sum, since a chunk never
//   straddles a segment.
#pragma once
#include <cuda_fp8.h>

#include "cuda/common.cuh"
#include "cuda/weight.cuh"

namespace fgcu {

// 16 E4M3 values (one 16-byte load; value i in byte i) -> 16 floats (sm_89+: cvt.rn.f16x2.e4m3x2).
__device__ __forceinline__ void e4m3x16(const uint4 &v, float *f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(w[i] >> (16 * h)), __NV_E4M3);
      const float2 p = __half22float2(__half2(r));
      f[4 * i + 2 * h] = p.x;
      f[4 * i + 2 * h + 1] = p.y;
    }
}

constexpr int kFp8GemvMaxRows = 8;

// act < 0: y bf16 [M, N] or fp32 (accumulate: +=); bias unused.
// act >= 0 (0 silu, 1 gelu, 2 gelu_tanh): gated, rows interleaved (gate_i, up_i), N even,
// y bf16 [M, N / 2] = act(gate + bias[2i]) * (up + bias[2i + 1]) (bias null: none).
// 1 <= M <= kFp8GemvMaxRows, K % 16 == 0, w.fp8(). Errors surface through cudaGetLastError.
void fp8_gemv_launch(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                     const float *bias, int M, int N, int K, cudaStream_t st);

}  // namespace fgcu
