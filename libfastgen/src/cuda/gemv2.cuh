// The one-token, two-rows-a-warp weight stream: one warp's dot products of x [K] with two bf16
// weight rows, 4 16-byte loads a row in flight a lane (lane l covers k = 8 l + 256 i, in that
// order, then a butterfly). gemm.cu's wide GEMV (qkv, gate_up; narrow ones under
// FASTGEN_GEMV_NARROW=1) and the qkv GEMV that applies RoPE in its epilogue (rope.cu) stream
// through it, so both sum in the same order.
#pragma once
#include "cuda/common.cuh"
#include "cuda/rms_fold.cuh"

namespace fgcu {

// Where a lane's 8 x values at k come from: a bf16 row.
struct XBf16 {
  const bf16 *x;
  __device__ __forceinline__ void load(int k, float (&xv)[8]) { load8(x + k, xv); }
  __device__ __forceinline__ void finish(float (&)[2], int) {}
};

// Or an RMSNorm row with its scale deferred: x = h * w (fp32 residual h, norm weight w), the sum
// of h^2 kept on the way, so that the GEMV multiplies its sums by rsqrt(mean(h^2) + eps) at the
// end (finish) instead of a norm kernel writing bf16(h * rsqrt(...) * w) before it. Not
// bit-identical to the norm kernel + GEMV (x is never rounded to bf16; the scale comes last).
struct XRmsDeferred {
  const float *h, *w;
  float eps, ss;
  __device__ __forceinline__ void load(int k, float (&xv)[8]) {
    const float4 h0 = *reinterpret_cast<const float4 *>(h + k), h1 = *reinterpret_cast<const float4 *>(h + k + 4);
    const float4 w0 = *reinterpret_cast<const float4 *>(w + k), w1 = *reinterpret_cast<const float4 *>(w + k + 4);
    const float hv[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
    const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
    for (int i = 0; i < 8; i++) {
      xv[i] = hv[i] * wv[i];
      ss = fmaf(hv[i], hv[i], ss);
    }
  }
  // After the stream (every lane has seen its share of h): the sums times the RMS scale.
  __device__ __forceinline__ void finish(float (&acc)[2], int K) {
    float t = ss;
    for (int off = 16; off > 0; off >>= 1) t += __shfl_xor_sync(0xffffffffu, t, off);
    const float scale = rsqrtf(t / K + eps);
    acc[0] *= scale, acc[1] *= scale;
  }
};

// The x row of a GEMV: bf16 x, or (DEFER) rms's RMSNorm row with its scale deferred.
template <bool DEFER>
__device__ __forceinline__ auto x_row(const bf16 *x, const RmsRows &rms) {
  if constexpr (DEFER) return XRmsDeferred{rms.h, rms.w, rms.eps, 0.f};
  else return XBf16{x};
}

// acc[0] = x . w0, acc[1] = x . w1 in every lane (K % 8 == 0), x read through xr (XBf16,
// XRmsDeferred, whose finish applies the deferred scale). The first round of loads is requested before ready(xr) is called: ready must
// pdl_wait (and may trigger the next kernel, or point xr at its row), and x is read only after it.
// A dead warp (!live) requests nothing, calls ready like the others and returns false.
template <class XRow, class Ready>
__device__ __forceinline__ bool gemv2_dots(const bf16 *__restrict__ w0, const bf16 *__restrict__ w1, int K,
                                           bool live, Ready ready, XRow &xr, float (&acc)[2]) {
  const int lane = threadIdx.x & 31;
  acc[0] = acc[1] = 0.f;
  auto fma8 = [&](const uint4 &a, const uint4 &b, int k) {
    float wa[8], wb[8];
    const __nv_bfloat162 *ha = reinterpret_cast<const __nv_bfloat162 *>(&a);
    const __nv_bfloat162 *hb = reinterpret_cast<const __nv_bfloat162 *>(&b);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      float2 fa = __bfloat1622float2(ha[i]), fb = __bfloat1622float2(hb[i]);
      wa[2 * i] = fa.x, wa[2 * i + 1] = fa.y, wb[2 * i] = fb.x, wb[2 * i + 1] = fb.y;
    }
    float xv[8];
    xr.load(k, xv);
#pragma unroll
    for (int i = 0; i < 8; i++) {
      acc[0] = fmaf(xv[i], wa[i], acc[0]);
      acc[1] = fmaf(xv[i], wb[i], acc[1]);
    }
  };
  int k = lane * 8;
  uint4 a[4], b[4];
  auto load4 = [&](int k) {
#pragma unroll
    for (int u = 0; u < 4; u++) {
      a[u] = __ldcs(reinterpret_cast<const uint4 *>(w0 + k + u * 256));
      b[u] = __ldcs(reinterpret_cast<const uint4 *>(w1 + k + u * 256));
    }
  };
  // The first weights are in flight while the previous kernel finishes (launch_k).
  bool full = k + 3 * 256 < K;
  if (full && live) load4(k);
  ready(xr);
  if (!live) return false;
  while (full) {
#pragma unroll
    for (int u = 0; u < 4; u++) fma8(a[u], b[u], k + u * 256);
    k += 4 * 256;
    full = k + 3 * 256 < K;
    if (full) load4(k);
  }
  for (; k < K; k += 256) {
    const uint4 a = __ldcs(reinterpret_cast<const uint4 *>(w0 + k));
    const uint4 b = __ldcs(reinterpret_cast<const uint4 *>(w1 + k));
    fma8(a, b, k);
  }
#pragma unroll
  for (int c = 0; c < 2; c++)
    for (int off = 16; off > 0; off >>= 1) acc[c] += __shfl_xor_sync(0xffffffffu, acc[c], off);
  xr.finish(acc, K);
  return true;
}

}  // namespace fgcu
