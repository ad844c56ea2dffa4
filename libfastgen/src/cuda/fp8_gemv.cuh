// The FP8 weight-streaming GEMVs (fp8_gemm.cuh's paths for few rows): y[M, N] (+)= x[M, K] · w^T
// with w FP8 E4M3 [N, K] (weight.cuh), x bf16, fp32 accumulation, weight-only (x is not quantized).
// FASTGEN_FP8_GEMV_VARIANT picks the kernel of the GEMV path (A/B timing, issue #18):
//   0  fp8_gemv.cu, below: R rows a warp, each row's loads issued, then multiplied
//   1  fp8_gemv_stream.cu: a warp streams R consecutive rows as one software pipeline (two
//      halves of 4 loads a lane, one in flight while the other is multiplied, across row ends)
//   2  as 1, widening e4m3 -> fp32 by integer bit moves instead of cvt (issue-rate bound?)
//   3  the tensor-core small-M kernel (gemv_small.cuh) with the FP8 loaders, at every M
// and fp8_gemv_small (FASTGEN_FP8_SMALL_MAX_M) routes 2..16 rows to that tensor-core kernel.
//
// Variant 0:
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

// The same 16 values by bit moves, each scaled by 2^-120 (the exponent bias difference; multiply
// sums by kE4m3Unit): the byte's sign to bit 31, its 7 exponent and mantissa bits to bits 20..26
// give the fp32 2^(e - 127) (1 + m / 8), or m / 8 2^-126 for e = 0 (an fp32 denormal, exact: no
// flush without --use_fast_math). NaN (0x7f / 0xff) reads as 480.
constexpr float kE4m3Unit = 0x1p120f;
__device__ __forceinline__ void e4m3x16_bits(const uint4 &v, float *f) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int b = 0; b < 4; b++)  // byte b to bits 24..31, then an arithmetic shift spreads the sign
      f[4 * i + b] = __int_as_float((int)((int32_t)(w[i] << (24 - 8 * b)) >> 4) & (int)0x87f00000);
}

constexpr int kFp8GemvMaxRows = 8;
constexpr int kFp8GemvVariants = 4;
constexpr int kFp8SmallMaxRows = 16;  // gemv_small.cuh kGemvSmallMaxM

// FASTGEN_FP8_GEMV_VARIANT, clamped to 0 .. kFp8GemvVariants - 1.
int fp8_gemv_variant();

// act < 0: y bf16 [M, N] or fp32 (accumulate: +=); bias unused.
// act >= 0 (0 silu, 1 gelu, 2 gelu_tanh): gated, rows interleaved (gate_i, up_i), N even,
// y bf16 [M, N / 2] = act(gate + bias[2i]) * (up + bias[2i + 1]) (bias null: none).
// 1 <= M <= kFp8GemvMaxRows, K % 16 == 0, w.fp8(). Errors surface through cudaGetLastError.
// variant: 0 .. kFp8GemvVariants - 1 (above).
void fp8_gemv_launch(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                     const float *bias, int M, int N, int K, cudaStream_t st, int variant);

// Variants 1 and 2 (fp8_gemv_stream.cu), same contract; bits: variant 2's conversion.
void fp8_gemv_stream_launch(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                            const float *bias, int M, int N, int K, cudaStream_t st, bool bits);

// The tensor-core small-M kernel on FP8 rows (fp8_gemv_small.cu), same contract for
// 1 <= M <= kGemvSmallMaxM (16): per-row scales multiply the fp32 sums (the widening to bf16 is
// exact); per-K-block scales multiply each weight before it is rounded to bf16 (as the dequantize
// fallback does).
void fp8_gemv_small(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                    const float *bias, int M, int N, int K, cudaStream_t st);

}  // namespace fgcu
