// The tensor-core small-M GEMV (gemv_small.cuh) on FP8 E4M3 weights (fp8_gemv.cuh fp8_gemv_small):
// the loaders that widen a thread's 8 e4m3 weights (one 8-byte load) to bf16 in registers.
//
// Widening: a byte's sign to bit 15 of a bf16 and its 7 exponent and mantissa bits to bits 4..10
// give the bf16 2^(e - 127) (1 + m / 8) (e = 0: the denormal m / 8 2^-126), 2^-120 of the E4M3
// value; one bf16x2 multiply by 2^120 per two weights makes it exact (vLLM's Marlin does the
// same). 4 integer ops and a multiply per two weights, no conversion-unit instructions.
// Per-row scales (kblock >= K) multiply the fp32 sums in the epilogue; per-K-block scales multiply
// each weight in fp32 before it is rounded to bf16 (the dequantize fallback's rounding), since a
// 32-k MMA step may span blocks of 16 k.
#include <string.h>

#include "cuda/fp8_gemv.cuh"
#include "cuda/gemv_small.cuh"

namespace fgcu {
namespace {

// 4 e4m3 (the bytes of w, k order) -> 2 bf16x2 words in k order, each value 2^-120 of its own.
__device__ __forceinline__ void e4m3x4_bf16_raw(uint32_t w, uint32_t &lo, uint32_t &hi) {
  const uint32_t a = __byte_perm(w, 0, 0x1404), b = __byte_perm(w, 0, 0x3424);  // bytes 0, 1 / 2, 3 to 8..15, 24..31
  lo = (a & 0x80008000u) | ((a >> 4) & 0x07f007f0u);
  hi = (b & 0x80008000u) | ((b >> 4) & 0x07f007f0u);
}

__device__ __forceinline__ uint32_t times_unit(uint32_t v) {
  __nv_bfloat162 h;
  memcpy(&h, &v, 4);
  h = __hmul2(h, __float2bfloat162_rn(kE4m3Unit));  // 2^120: exact in bf16, the product exact too
  memcpy(&v, &h, 4);
  return v;
}


// Per-row scales [N].
struct Fp8Rows {
  const uint8_t *w;
  const float *scales;
  int K;
  using Row = const uint8_t *;
  using Raw = uint2;
  static constexpr int kK = 8, kSteps = 4;
  __device__ __forceinline__ Row row(int n) const { return w + (size_t)n * K; }
  __device__ __forceinline__ Raw load(Row r, int k) const { return __ldcs(reinterpret_cast<const uint2 *>(r + k)); }
  __device__ __forceinline__ const void *src(Row r, int k) const { return r + k; }
  __device__ __forceinline__ uint4 bf16x8(const Raw &v, Row, int) const {
    uint4 o;
    e4m3x4_bf16_raw(v.x, o.x, o.y);
    e4m3x4_bf16_raw(v.y, o.z, o.w);
    o.x = times_unit(o.x), o.y = times_unit(o.y), o.z = times_unit(o.z), o.w = times_unit(o.w);
    return o;
  }
  __device__ __forceinline__ float row_scale(int n) const { return __ldg(scales + n); }
};

// Per-row scales [N], 16 k a thread load (FASTGEN_FP8_SMALL_KDEPTH=16): 16-byte loads, so a warp
// load asks for 64 contiguous bytes of each of its 8 rows (bf16's pattern: 512 bytes in 8 rows,
// not 256 in 8 one-sector pieces: half the load instructions and L1 requests a byte) and a warp
// step covers 64 k, 2 steps a pipeline half: the same bytes and registers in flight as Fp8Rows
// (92-124 registers, 2 blocks an SM). 4 steps a half (twice the bytes a warp) took 174-237
// registers, one block an SM: the same bytes a SM, so it was not kept. Not bit-identical to
// Fp8Rows: the k of each MMA and each warp's k slices differ (fp32 sums in another order).
struct Fp8WideRows {
  const uint8_t *w;
  const float *scales;
  int K;
  using Row = const uint8_t *;
  using Raw = uint4;
  static constexpr int kK = 16, kSteps = 2;
  __device__ __forceinline__ Row row(int n) const { return w + (size_t)n * K; }
  __device__ __forceinline__ Raw load(Row r, int k) const { return __ldcs(reinterpret_cast<const uint4 *>(r + k)); }
  __device__ __forceinline__ const void *src(Row r, int k) const { return r + k; }
  __device__ __forceinline__ void bf16x16(const Raw &v, Row r, int k, uint4 (&o)[2]) const {
    const Fp8Rows narrow{w, scales, K};
    o[0] = narrow.bf16x8(make_uint2(v.x, v.y), r, k);
    o[1] = narrow.bf16x8(make_uint2(v.z, v.w), r, k + 8);
  }
  __device__ __forceinline__ float row_scale(int n) const { return __ldg(scales + n); }
};

// Per-K-block scales [N, nkb] (kblock % 16 == 0, so 8 weights at k % 8 == 0 share one).
struct Fp8BlockRows {
  const uint8_t *w;
  const float *scales;
  int K, kblock, nkb;
  struct Row {
    const uint8_t *p;
    const float *s;
  };
  using Raw = uint2;
  static constexpr int kK = 8, kSteps = 4;
  __device__ __forceinline__ Row row(int n) const { return Row{w + (size_t)n * K, scales + (size_t)n * nkb}; }
  __device__ __forceinline__ Raw load(Row r, int k) const { return __ldcs(reinterpret_cast<const uint2 *>(r.p + k)); }
  __device__ __forceinline__ const void *src(Row r, int k) const { return r.p + k; }
  __device__ __forceinline__ uint4 bf16x8(const Raw &v, Row r, int k) const {
    const float s = __ldg(r.s + min(k, K - 1) / kblock);  // k >= K: v is zeros, any scale will do
    const uint32_t q[2] = {v.x, v.y};
    float f[8];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
      for (int b = 0; b < 4; b++)  // bit moves (fp8_gemv.cuh kE4m3Unit), then times 2^120 (exact) and the scale
        f[4 * i + b] = __int_as_float((int)((int32_t)(q[i] << (24 - 8 * b)) >> 4) & (int)0x87f00000) * kE4m3Unit * s;
    return make_uint4(pack_bf16(f[0], f[1]), pack_bf16(f[2], f[3]), pack_bf16(f[4], f[5]),
                      pack_bf16(f[6], f[7]));
  }
  __device__ __forceinline__ float row_scale(int) const { return 1.f; }
};

template <class W>
void launch(W wl, const bf16 *x, void *y, bool y_f32, bool acc, int act, const float *bias, int M, int N, int K,
            const DeferredNorm &dn, cudaStream_t st) {
  const int rt = gemv_small_rt();
  const RmsRows none;
  switch (act) {
    case 0: return launch_gemv_small<W, 0>(wl, x, y, bias, false, false, M, N, K, rt, st, none, dn);
    case 1: return launch_gemv_small<W, 1>(wl, x, y, bias, false, false, M, N, K, rt, st, none, dn);
    case 2: return launch_gemv_small<W, 2>(wl, x, y, bias, false, false, M, N, K, rt, st, none, dn);
    default: return launch_gemv_small<W, -1>(wl, x, y, nullptr, y_f32, acc, M, N, K, rt, st, none, dn);
  }
}

// The loader for w's scales and FASTGEN_FP8_SMALL_KDEPTH, passed to f.
template <class F>
void with_loader(const Weight &w, int K, F f) {
  const uint8_t *p = (const uint8_t *)w.p;
  const int nkb = w.nkb(K);
  const int depth = fg_knob_int(FG_KNOB_FP8_SMALL_KDEPTH);
  if (nkb > 1) f(Fp8BlockRows{p, w.scales, K, w.kblock, nkb});
  else if (depth == 16 && K % 16 == 0) f(Fp8WideRows{p, w.scales, K});
  else f(Fp8Rows{p, w.scales, K});
}

}  // namespace

void fp8_gemv_small(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                    const float *bias, int M, int N, int K, cudaStream_t st, const DeferredNorm &dn) {
  with_loader(w, K, [&](auto wl) { launch(wl, x, y, y_f32, accumulate, act, bias, M, N, K, dn, st); });
}

void fp8_gemv_small_rope(const bf16 *x, const Weight &w, const RopeArgs &rp, int M, int N, int K, cudaStream_t st,
                         const DeferredNorm &dn) {
  with_loader(w, K, [&](auto wl) { launch_gemv_small_rope(wl, x, rp, M, N, K, dn, st); });
}

}  // namespace fgcu
