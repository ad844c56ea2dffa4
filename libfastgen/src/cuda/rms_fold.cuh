// The RMSNorm folded into the GEMV that consumes it (decode: qkv and the gated MLP input). The
// GEMV gets the residual rows h and the norm weight instead of x, and each block rebuilds
//   x[m] = bf16(rmsnorm(h[m]) * w)        bf16 [M, K], in shared memory
// after pdl_wait, bit for bit what norm_rows (norm.cu) would have written. The norm kernel, its
// launch gap and x's round trip through memory leave the decode chain: per layer the chain is
// qkv -> RoPE -> attention -> o -> gate_up -> down, the GEMVs' weight streams starting while the
// kernel before them finishes (common.cuh, pdl_wait). Every block re-reads h (16 KB at hidden
// 4096, from L2): about what the plain GEMVs' warps read of x.
//
// Bit for bit: norm_kernel sums squares in kRmsSumThreads = 512 threads (thread i: elements
// i, i + 512, ... in order, by fmaf from 0), then block_sum (a butterfly over each warp, then the 16
// warp totals in order from 0), scale = rsqrtf(total / K + eps), x = fmaf(scale * h, w, 0).
// rms_to_shared plays those 512 threads with a block of any size: 128 four-wide slots, slot s
// holding threads 4s .. 4s + 3 as one float4 per 512 elements. The butterfly's offsets 16, 8, 4
// cross slots (lanes xor 4, 2, 1 within 8 lanes), 2 and 1 stay inside a slot:
//
//   virtual lane  4 (lane % 8) + c,  c = 0..3     virtual warp  slot / 8 (16 of them)
//
// test/gpu/pdl.test.ts holds the folded and the unfolded passes equal bit for bit.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

// The rows of x given as an RMSNorm of residual rows: x[m] = bf16(rmsnorm(h[m]) * w).
struct RmsRows {
  const float *h = nullptr;  // [M, K] fp32 residual rows (row stride K)
  const float *w = nullptr;  // [K] norm weight (norm_weight_offset already added at load)
  float eps = 0.f;
};

// The RMSNorm deferred (FASTGEN_NORM_DEFER) between two small-M GEMVs (gemv_small.cuh, 1-16
// tokens): the norm kernel leaves the chain. The GEMV that adds to the residual (o, down: y = h,
// fp32, accumulated) also writes x = bf16(h * w) with the next norm's weight w and, per block,
// the sums of h^2 over its rows; the GEMV that reads x (qkv, the gated MLP input) adds those
// partial sums up (a fixed order) and multiplies its dot products by rsqrt(mean(h^2) + eps).
// Not bit-identical to the norm kernel (x is rounded to bf16 before the scale, not after; the
// squares are summed in another order), hence an option. Partial sums are [block][kDeferredNormMaxM].
constexpr int kDeferredNormMaxM = 16;
struct DeferredNorm {
  // Reader: x is bf16(h * w); its sums are scaled by rsqrt(sum of part[b][m] over b < nb, / K + eps).
  const float *part = nullptr;
  int nb = 0;
  float eps = 0.f;
  // Writer (y fp32, accumulated, is h): also x_out[m][n] = bf16(h[m][n] * w_next[n]) and
  // part_out[block][m] = the sum of h[m][n]^2 over the block's rows n.
  bf16 *x_out = nullptr;
  const float *w_next = nullptr;
  float *part_out = nullptr;
};

// The partial sums a deferred-norm writer of N rows leaves: one per block of 16 rows (the small-M
// kernel runs one 16-row tile a warp for a deferred norm, whatever FASTGEN_GEMV_ROWS says).
inline int deferred_norm_blocks(int N) { return (N + 15) / 16; }

constexpr int kRmsSumThreads = 512;  // norm.cu kNormThreads: the order of norm_kernel's sums
constexpr int kRmsPad = 32;          // bf16 a row of x in gemv_small's shared memory is padded by (banks)

// Before pdl_wait: the norm weight into L2 (no kernel of the step writes it), so that its loads
// after the wait do not queue at DRAM behind the weight stream.
__device__ __forceinline__ void rms_prefetch(const RmsRows &r, int K) {
  for (int i = threadIdx.x * 32; i < K; i += blockDim.x * 32)  // one 128-byte line = 32 floats
    asm volatile("prefetch.global.L2 [%0];\n" ::"l"(r.w + i));
}

// After pdl_wait, by every thread of the block (blockDim.x a multiple of 32): xs[m * pitch + k] =
// x[m][k] for m < M, k < K. K % 8 == 0, h and w 16-byte aligned, xs 16-byte aligned, pitch % 8 == 0;
// scratch: shared, M * 16 floats. Returns with xs visible to the whole block.
__device__ __forceinline__ void rms_to_shared(const RmsRows &r, int M, int K, bf16 *xs, int pitch,
                                              float *scratch) {
  const int lane = threadIdx.x & 31;
  // The norm weight on its way into L1 while the sums wait for h (no registers held for it).
  for (int i = threadIdx.x * 32; i < K; i += blockDim.x * 32)
    asm volatile("prefetch.global.L1 [%0];\n" ::"l"(r.w + i));
  // Sums of squares. Item m * 128 + slot; a warp's 32 items are one row's slots 32q .. 32q + 31
  // (4 virtual warps), so every lane of it takes part in the shuffles.
  for (int item = threadIdx.x; item < M * 128; item += blockDim.x) {
    const int m = item >> 7, slot = item & 127;
    const float *row = r.h + (size_t)m * K;
    float p[4] = {0.f, 0.f, 0.f, 0.f};
    for (int k = slot * 4; k < K; k += kRmsSumThreads) {
      const float4 v = *reinterpret_cast<const float4 *>(row + k);
      p[0] = fmaf(v.x, v.x, p[0]), p[1] = fmaf(v.y, v.y, p[1]);
      p[2] = fmaf(v.z, v.z, p[2]), p[3] = fmaf(v.w, v.w, p[3]);
    }
#pragma unroll
    for (int off = 4; off > 0; off >>= 1)  // virtual offsets 16, 8, 4
#pragma unroll
      for (int c = 0; c < 4; c++) p[c] += __shfl_xor_sync(0xffffffffu, p[c], off);
    if ((lane & 7) == 0) scratch[m * 16 + (slot >> 3)] = (p[0] + p[2]) + (p[1] + p[3]);  // offsets 2, 1
  }
  __syncthreads();
  // x = fmaf(scale * h, w, 0) in 8-wide pieces (h again and w from L1).
  const int K8 = K >> 3;
  int cur = -1;
  float scale = 0.f;
  for (int item = threadIdx.x; item < M * K8; item += blockDim.x) {
    const int m = item / K8, k = (item - m * K8) * 8;
    if (m != cur) {
      float total = 0.f;
      for (int v = 0; v < kRmsSumThreads / 32; v++) total += scratch[m * 16 + v];
      scale = rsqrtf(total / K + r.eps);
      cur = m;
    }
    const float4 *hp = reinterpret_cast<const float4 *>(r.h + (size_t)m * K + k);
    const float4 *wp = reinterpret_cast<const float4 *>(r.w + k);
    const float4 h0 = hp[0], h1 = hp[1], w0 = wp[0], w1 = wp[1];
    const float hv[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
    const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
    uint4 u;
    __nv_bfloat16 *o = reinterpret_cast<__nv_bfloat16 *>(&u);
#pragma unroll
    for (int i = 0; i < 8; i++) o[i] = to_bf(__fmaf_rn(scale * hv[i], wv[i], 0.f));
    *reinterpret_cast<uint4 *>(xs + (size_t)m * pitch + k) = u;
  }
  __syncthreads();
}

// The one-token GEMVs' form (gemm.cu): x of one row in dynamic shared memory (K * 2 bytes at launch).
__device__ __forceinline__ const bf16 *rms_row_to_shared(const RmsRows &r, int K) {
  extern __shared__ __align__(16) unsigned char rms_row_smem[];
  __shared__ float scratch[kRmsSumThreads / 32];
  bf16 *xs = reinterpret_cast<bf16 *>(rms_row_smem);
  rms_to_shared(r, 1, K, xs, K, scratch);
  return xs;
}

}  // namespace fgcu
