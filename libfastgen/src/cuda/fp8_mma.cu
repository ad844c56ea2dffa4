// The W8A8 tensor-core GEMV for 1..8 rows (fp8_gemv.cuh fp8_mma_gemv): FP8 weights go from
// their 16-byte loads straight into m16n8k32 E4M3 MMAs, with no conversion instruction at all.
//
// Why: the CUDA-core GEMV widens every weight (cvt e4m3x2 -> f16x2 -> f32, about 3.5 instructions
// a weight with the FMA and x's widening) and the small-M kernel widens to bf16 for bf16 MMAs
// (about 2.5): at H200 bandwidth (4.8 TB/s, 18 bytes a clock an SM) that is most of what an SM
// can issue, so both streamed FP8 at 39-79% of the copy bandwidth (bench/results/device-wave12-h100.md).
// Here a lane issues 2 weight loads, 1 shared-memory load of x and 2 MMAs per 32 weight bytes.
//
// Work: one block of 8 warps per 16 output rows (one m16 tile); the block's K is split into steps
// of 64 and the steps into 8 contiguous warp ranges; each warp sums its range in registers and the
// 8 partial tiles are added through shared memory at the end.
//
// Activations: x is quantized to E4M3 in the block's shared memory (each warp its own steps, right
// after pdl_wait: the first weight loads are in flight meanwhile) with one scale per row and
// 64-k group: amax / 448 (floored at kMinTokenScale), or the checkpoint's static input_scale.
// That is finer than the cuBLASLt path's one scale a row, so it is at least as close to the
// weight-only product; each step's MMA sum is multiplied by its group's scale and added in fp32
// (the tensor cores' own accumulation never spans more than 64 k).
//
// Fragments (PTX ISA, mma.m16n8k32 with 8-bit A/B; g = lane / 4, t = lane % 4):
//   A (16 x 32, row): reg0 = row g, cols 4t..4t+3; reg1 = row g+8, same cols; reg2 = row g,
//     cols 16+4t..16+4t+3; reg3 = row g+8, same cols (byte i = col + i).
//   B (32 x 8, col):  reg0 = rows 4t..4t+3 of col g; reg1 = rows 16+4t..16+4t+3 of col g.
//   C (16 x 8, f32):  c0, c1 = row g, cols 2t, 2t+1; c2, c3 = row g+8, same cols.
// A dot product may take its k in any order as long as A and B agree, so a step gives lane (g, t)
// the 16 contiguous weight bytes at k = 64s + 16t of rows g and g+8 (wa, wb) and the 16 x bytes
// at the same k of x row g (xf): MMA 1 takes A = {wa.x, wb.x, wa.y, wb.y}, B = {xf.x, xf.y}
// (logical cols 4t+i <-> k + i, 16+4t+i <-> k + 4 + i), MMA 2 the .z/.w words (k + 8 .. k + 15).
// Column g of the output is x row g: 8 rows of x at once, rows g >= M read row M - 1 (unused).
#include <cuda_fp8.h>

#include "cuda/fp8_gemv.cuh"

namespace fgcu {
namespace {

constexpr int kWarps = 8;
constexpr int kTileRows = 16;  // output rows a block
constexpr int kStepK = 64;     // k a warp step: two m16n8k32 MMAs
constexpr int kDepth = 4;      // steps of weight loads in flight a warp (1 KB each)
constexpr int kXPad = 64;      // bytes after each quantized x row (MmaSmem)
constexpr int kXBatch = 4;     // x loads a lane has in flight while quantizing

__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();  // fp8_mma_gemv refuses devices below sm_89
#endif
}

// Shared memory of a block: x quantized [MM][xstride] bytes, its scales [steps][MM] floats, the
// warps' partial tiles [kWarps][32] float4.
struct MmaSmem {
  int xstride, steps;
  // xstride = 64 mod 128: the 8 lanes of an LDS.128 phase read 2 rows in 2 different bank halves.
  __host__ __device__ explicit MmaSmem(int K)
      : xstride((K + 127) / 128 * 128 + kXPad), steps((K + kStepK - 1) / kStepK) {}
  __host__ __device__ size_t scales_at(int MM) const { return (size_t)MM * xstride; }
  __host__ __device__ size_t red_at(int MM) const { return (scales_at(MM) + (size_t)steps * MM * 4 + 15) / 16 * 16; }
  __host__ __device__ size_t bytes(int MM) const { return red_at(MM) + kWarps * 32 * 16; }
};

// ACT < 0: y[M, N] bf16, or fp32 (accumulate: +=). ACT >= 0: rows interleaved (gate_i, up_i),
// y bf16 [M, N / 2] = act(gate + bias[2i]) * (up + bias[2i + 1]).
template <int MM, int ACT>
__global__ void __launch_bounds__(kWarps * 32)
    fp8_mma_gemv_kernel(const bf16 *__restrict__ x, const uint8_t *__restrict__ w, const float *__restrict__ wscale,
                        float input_scale, void *__restrict__ y, bool y_f32, bool accumulate,
                        const float *__restrict__ bias, int M, int N, int K) {
  extern __shared__ __align__(16) uint8_t smem[];
  const MmaSmem L(K);
  uint8_t *xq = smem;
  float *xs = reinterpret_cast<float *>(smem + L.scales_at(MM));
  float4 *red = reinterpret_cast<float4 *>(smem + L.red_at(MM));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int s0 = warp * L.steps / kWarps, s1 = (warp + 1) * L.steps / kWarps;  // this warp's steps
  const int n0 = blockIdx.x * kTileRows;
  const uint8_t *wa = w + (size_t)min(n0 + g, N - 1) * K + 16 * t;
  const uint8_t *wb = w + (size_t)min(n0 + g + 8, N - 1) * K + 16 * t;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  uint4 va[kDepth], vb[kDepth];
  auto load = [&](int s, uint4 &a, uint4 &b) {
    const bool in = s < s1 && s * kStepK + 16 * t < K;  // K % 16 == 0: a chunk is whole or absent
    a = in ? __ldcs(reinterpret_cast<const uint4 *>(wa + (size_t)s * kStepK)) : zero;
    b = in ? __ldcs(reinterpret_cast<const uint4 *>(wb + (size_t)s * kStepK)) : zero;
  };
  // The first weights are in flight while the previous kernel finishes (launch_k).
#pragma unroll
  for (int u = 0; u < kDepth; u++) load(s0 + u, va[u], vb[u]);
  pdl_wait();
  pdl_launch_dependents();

  // Quantize this warp's steps of x: 8 lanes a (row, step) group of 64, 8 values a lane, up to
  // kXBatch groups a lane loaded before any is used (their L2 latencies overlap); a group's k past
  // K become zeros (so do the MMAs' tails).
  const int nsteps = s1 - s0, groups = M * nsteps;
  for (int base = 0; base < groups; base += 4 * kXBatch) {
    uint4 raw[kXBatch];
#pragma unroll
    for (int j = 0; j < kXBatch; j++) {
      const int item = base + 4 * j + (lane >> 3);
      const int m = item / max(nsteps, 1), k = (s0 + item % max(nsteps, 1)) * kStepK + (lane & 7) * 8;
      raw[j] = item < groups && k < K ? *reinterpret_cast<const uint4 *>(x + (size_t)m * K + k) : zero;
    }
#pragma unroll
    for (int j = 0; j < kXBatch; j++) {
      if (base + 4 * j >= groups) break;  // uniform across the warp
      const int item = base + 4 * j + (lane >> 3);
      const int m = item / nsteps, s = s0 + item % nsteps, k = s * kStepK + (lane & 7) * 8;
      float v[8];
      unpack8(raw[j], v);
      float amax = 0.f;
#pragma unroll
      for (int i = 0; i < 8; i++) amax = fmaxf(amax, fabsf(v[i]));
#pragma unroll
      for (int off = 1; off < 8; off <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
      const float sc = input_scale > 0.f ? input_scale : fmaxf(amax / 448.f, kMinTokenScale);
      const float inv = 1.f / sc;
      uint32_t q[4];
#pragma unroll
      for (int i = 0; i < 4; i++)
        q[i] = __nv_cvt_float2_to_fp8x2(make_float2(v[2 * i] * inv, v[2 * i + 1] * inv), __NV_SATFINITE, __NV_E4M3);
      if (item < groups) {
        *reinterpret_cast<uint2 *>(xq + (size_t)m * L.xstride + k) = make_uint2(q[0] | (q[1] << 16), q[2] | (q[3] << 16));
        if ((lane & 7) == 0) xs[s * MM + m] = sc;
      }
    }
  }
  __syncwarp();

  const uint8_t *xrow = xq + (size_t)min(g, M - 1) * L.xstride + 16 * t;
  const int c0 = min(2 * t, M - 1), c1 = min(2 * t + 1, M - 1);  // the x rows of this lane's output columns
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int s = s0; s < s1; s += kDepth) {
#pragma unroll
    for (int u = 0; u < kDepth; u++) {
      if (s + u >= s1) break;
      const uint4 a = va[u], b = vb[u];
      load(s + u + kDepth, va[u], vb[u]);  // refill the slot: kDepth steps stay in flight
      const uint4 xf = *reinterpret_cast<const uint4 *>(xrow + (size_t)(s + u) * kStepK);
      float d[4] = {0.f, 0.f, 0.f, 0.f};
      mma_e4m3(d, a.x, b.x, a.y, b.y, xf.x, xf.y);
      mma_e4m3(d, a.z, b.z, a.w, b.w, xf.z, xf.w);
      const float sx0 = xs[(s + u) * MM + c0], sx1 = xs[(s + u) * MM + c1];
      acc[0] = fmaf(d[0], sx0, acc[0]);
      acc[1] = fmaf(d[1], sx1, acc[1]);
      acc[2] = fmaf(d[2], sx0, acc[2]);
      acc[3] = fmaf(d[3], sx1, acc[3]);
    }
  }
  red[warp * 32 + lane] = make_float4(acc[0], acc[1], acc[2], acc[3]);
  __syncthreads();
  if (warp != 0) return;
  float4 sum = red[lane];
#pragma unroll
  for (int i = 1; i < kWarps; i++) {
    const float4 p = red[i * 32 + lane];
    sum.x += p.x, sum.y += p.y, sum.z += p.z, sum.w += p.w;
  }
  const float v[4] = {sum.x, sum.y, sum.z, sum.w};
  if constexpr (ACT >= 0) {
    // Gate rows are even: lane (g, t) with g even takes its up row from lane (g + 1, t).
    float up[4];
#pragma unroll
    for (int i = 0; i < 4; i++) up[i] = __shfl_down_sync(0xffffffffu, v[i], 4);
    if (g & 1) return;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int n = n0 + g + (i >= 2 ? 8 : 0), m = 2 * t + (i & 1);
      if (n >= N || m >= M) continue;
      const float gate = v[i] * __ldg(wscale + n) + (bias ? bias[n] : 0.f);
      const float u = up[i] * __ldg(wscale + n + 1) + (bias ? bias[n + 1] : 0.f);
      static_cast<bf16 *>(y)[(size_t)m * (N / 2) + n / 2] = to_bf(activate(ACT, gate) * u);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int n = n0 + g + (i >= 2 ? 8 : 0), m = 2 * t + (i & 1);
      if (n >= N || m >= M) continue;
      const float r = v[i] * __ldg(wscale + n);
      const size_t o = (size_t)m * N + n;
      if (y_f32) {
        float *yf = static_cast<float *>(y);
        yf[o] = accumulate ? yf[o] + r : r;
      } else {
        static_cast<bf16 *>(y)[o] = to_bf(r);
      }
    }
  }
}

template <int MM, int ACT>
void launch_act(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, const float *bias, int M,
                int N, int K, size_t bytes, cudaStream_t st) {
  launch_k(fp8_mma_gemv_kernel<MM, ACT>, dim3(ceil_div(N, kTileRows)), dim3(kWarps * 32), bytes, st, x,
           (const uint8_t *)w.p, (const float *)w.scales, w.input_scale, y, y_f32, accumulate, bias, M, N, K);
}

template <int MM>
int set_smem_ceiling(int optin) {
  // Every instantiation may take up to the device's opt-in shared memory (fp8_mma_takes bounds it).
  const cudaError_t e[4] = {
      cudaFuncSetAttribute(fp8_mma_gemv_kernel<MM, -1>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin),
      cudaFuncSetAttribute(fp8_mma_gemv_kernel<MM, 0>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin),
      cudaFuncSetAttribute(fp8_mma_gemv_kernel<MM, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin),
      cudaFuncSetAttribute(fp8_mma_gemv_kernel<MM, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, optin)};
  for (cudaError_t x : e)
    if (x != cudaSuccess) return (int)x;
  return 0;
}

template <int MM>
void launch_mm(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act, const float *bias,
               int M, int N, int K, cudaStream_t st) {
  const size_t bytes = MmaSmem(K).bytes(MM);
  switch (act) {
    case 0: return launch_act<MM, 0>(x, w, y, false, false, bias, M, N, K, bytes, st);
    case 1: return launch_act<MM, 1>(x, w, y, false, false, bias, M, N, K, bytes, st);
    case 2: return launch_act<MM, 2>(x, w, y, false, false, bias, M, N, K, bytes, st);
    default: return launch_act<MM, -1>(x, w, y, y_f32, accumulate, nullptr, M, N, K, bytes, st);
  }
}

// The device's opt-in shared memory a block (0: not sm_89+, so no E4M3 MMA), found once a device.
int device_optin() {
  static int known[32];  // optin + 1 per device; 0: not looked up yet
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  int &k = known[dev & 31];
  int cached = __atomic_load_n(&k, __ATOMIC_ACQUIRE);
  if (cached) return cached - 1;
  int major = 0, minor = 0, optin = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  int v = major * 10 + minor >= 89 ? optin : 0;
  if (v && (set_smem_ceiling<1>(v) || set_smem_ceiling<2>(v) || set_smem_ceiling<4>(v) || set_smem_ceiling<8>(v))) v = 0;
  cudaGetLastError();  // a refusal must not surface as the next launch's error
  __atomic_store_n(&k, v + 1, __ATOMIC_RELEASE);
  return v;
}

int rows_template(int M) { return M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : 8; }

}  // namespace

bool fp8_mma_takes(const Weight &w, int M, int K) {
  if (M < 1 || M > kFp8MmaMaxRows || w.nkb(K) != 1 || K % 16 != 0) return false;
  const int optin = device_optin();
  return optin > 0 && MmaSmem(K).bytes(rows_template(M)) <= (size_t)optin;
}

void fp8_mma_gemv(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act, const float *bias,
                  int M, int N, int K, cudaStream_t st) {
  switch (rows_template(M)) {
    case 1: return launch_mm<1>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
    case 2: return launch_mm<2>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
    case 4: return launch_mm<4>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
    default: return launch_mm<8>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  }
}

}  // namespace fgcu
