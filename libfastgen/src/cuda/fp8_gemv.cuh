// The FP8 weight-streaming GEMVs (fp8_gemm.cuh's paths for few rows): y[M, N] (+)= x[M, K] · w^T
// with w FP8 E4M3 [N, K] (weight.cuh), x bf16, fp32 accumulation, weight-only (x is not quantized).
// Two kernels: fp8_gemv_launch (fp8_gemv.cu) for up to FASTGEN_FP8_GEMV_MAX_M rows (default: one
// on GPUs of 4 TB/s or more, e.g. H200, none below, e.g. H100: fp8_gemm.cu auto_gemv_rows) and fp8_gemv_small (fp8_gemv_small.cu, the tensor-core small-M kernel with FP8 loaders)
// for the rows above, up to FASTGEN_FP8_SMALL_MAX_M (default 8). Since wave 12 (H100,
// bench/results/device-wave12-h100.md, with the timing hooks' L2 flush by reads) the small-M
// kernel takes one row too: 7B decode b=1 3.18-3.22 ms against 3.34-4.21 with the GEMV; a W8A8
// tensor-core GEMV (x quantized to E4M3 in shared memory, E4M3 MMAs straight off the weight
// loads) lost to it at every M (its quantizing prologue delays the weight stream) and was deleted.
// The earlier A/B (H100, bench/results/device-wave9-h100.md, 8-byte small-M loads and a memset L2
// "flush") had picked this GEMV at one row (3.37 ms against 3.57-3.69 for a row-streaming
// pipeline, a bit-move widening GEMV and the small-M kernel); b=2/4/8 3.63/3.73/3.97 ms with the small-M kernel against 4.34/6.22/10.04 with
// this GEMV; at 16 rows W8A8 on cuBLASLt (4.71 ms) beats it (5.10).
//
// fp8_gemv_launch:
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
#include "cuda/rms_fold.cuh"
#include "cuda/rope.cuh"
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

// E4M3 widened by bit moves (fp8_gemv_small.cu): the byte's sign to bit 31, its 7 exponent and
// mantissa bits to bits 20..26 give 2^-120 times the value as an fp32 (denormals exact); multiply
// by kE4m3Unit to undo the bias difference.
constexpr float kE4m3Unit = 0x1p120f;

constexpr int kFp8GemvMaxRows = 8;
// vLLM's floor for a dynamic activation scale, 1 / (448 * 512): a zero row quantizes to zeros.
constexpr float kMinTokenScale = 1.f / (448.f * 512.f);
constexpr int kFp8SmallMaxRows = 16;  // gemv_small.cuh kGemvSmallMaxM

// act < 0: y bf16 [M, N] or fp32 (accumulate: +=); bias unused.
// act >= 0 (0 silu, 1 gelu, 2 gelu_tanh): gated, rows interleaved (gate_i, up_i), N even,
// y bf16 [M, N / 2] = act(gate + bias[2i]) * (up + bias[2i + 1]) (bias null: none).
// 1 <= M <= kFp8GemvMaxRows, K % 16 == 0, w.fp8(). Errors surface through cudaGetLastError.
void fp8_gemv_launch(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                     const float *bias, int M, int N, int K, cudaStream_t st);

// The tensor-core small-M kernel on FP8 rows (fp8_gemv_small.cu), same contract for
// 1 <= M <= kGemvSmallMaxM (16): per-row scales multiply the fp32 sums (the widening to bf16 is
// exact); per-K-block scales multiply each weight before it is rounded to bf16 (as the dequantize
// fallback does).
// dn: a deferred norm read or (act < 0, y_f32 and accumulate) written (rms_fold.cuh).
void fp8_gemv_small(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                    const float *bias, int M, int N, int K, cudaStream_t st, const DeferredNorm &dn = DeferredNorm());
// The qkv projection with RoPE and the K/V write in its epilogue (gemv_small.cuh
// launch_gemv_small_rope) on FP8 rows, the same loaders.
void fp8_gemv_small_rope(const bf16 *x, const Weight &w, const RopeArgs &rp, int M, int N, int K, cudaStream_t st,
                         const DeferredNorm &dn = DeferredNorm());

}  // namespace fgcu
