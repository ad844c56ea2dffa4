// FP8 GEMV variants 1 and 2 (fp8_gemv.cuh, FASTGEN_FP8_GEMV_VARIANT): one warp streams R
// consecutive weight rows (R K bytes, contiguous) as one software pipeline.
//
// Why: an E4M3 row of Llama-7B's K = 4096 is 4 KB, one round of variant 0's 8 loads a lane, so
// every warp loads its row, waits, multiplies and quits: in the kernel's single wave the DRAM
// queue runs dry while the warps multiply (what gemv_pipe_kernel fixed for bf16 rows). Here the
// warp's work is a sequence of halves of kH 16-byte loads a lane (kH 32 chunks of 16 values);
// half h is row h / hp, chunks (h % hp) kH 32 + lane + 32 u (hp halves a row, the last one
// partial where K is not a multiple of kH 512). Two halves are always requested: the next one
// is issued before this one is multiplied, across row ends. A row's last half sums it over the
// warp (every lane gets the sum), scales and writes it (lane 0).
//   R: 4 rows a warp for wide N (qkv, gate_up) and gated pairs, 2 for narrow N (o, down: 2048
//   warps for N = 4096, one wave at 2 blocks an SM).
//   BITS (variant 2): e4m3 -> fp32 by integer bit moves (e4m3x16_bits) instead of cvt e4m3x2 ->
//   f16x2 -> f32: 3 integer ops a value, no conversion-unit instructions; sums times kE4m3Unit.
#include "cuda/fp8_gemv.cuh"

namespace fgcu {
namespace {

constexpr int kH = 4;                 // 16-byte loads a lane per pipeline half
constexpr int kHalfChunks = kH * 32;  // 16-value chunks a half covers (whole warp)

// MM >= M rows of x; KSEG: scales [N, nkb] per chunk, else [N] per row; ACT >= 0: rows are
// (gate, up) pairs (R even), y bf16 [M, N / 2]. 256 threads.
template <int MM, int R, bool KSEG, int ACT, bool BITS>
__global__ void __launch_bounds__(256)
    fp8_gemv_stream_kernel(const bf16 *__restrict__ x, const uint8_t *__restrict__ w,
                           const float *__restrict__ scales, int kblock, int nkb, void *__restrict__ y,
                           bool y_f32, bool accumulate, const float *__restrict__ bias, int M, int N, int K) {
  const int lane = threadIdx.x & 31;
  const int n0 = (blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * R;
  const bool live = n0 < N;  // dead warps still pass pdl_wait below
  const int C = K >> 4;      // 16-value chunks a row
  const int hp = (C + kHalfChunks - 1) / kHalfChunks;
  const int total = live ? min(R, N - n0) * hp : 0;  // this warp's halves
  const uint8_t *w0 = w + (size_t)(live ? n0 : 0) * K;
  auto load = [&](uint4 (&v)[kH], int h) {
    if (h >= total) return;
    const int r = h / hp, cb = (h - r * hp) * kHalfChunks + lane;
    const uint8_t *wr = w0 + (size_t)r * K;
#pragma unroll
    for (int u = 0; u < kH; u++) {
      const int c = cb + 32 * u;
      v[u] = c < C ? __ldcs(reinterpret_cast<const uint4 *>(wr + (size_t)c * 16)) : make_uint4(0, 0, 0, 0);
    }
  };
  uint4 a[kH] = {}, b[kH] = {};
  // The first two halves are in flight while the previous kernel finishes (launch_k).
  load(a, 0);
  load(b, 1);
  pdl_wait();
  pdl_launch_dependents();
  if (!live) return;
  float acc[MM], gate[MM];  // this lane's part of the current row; the pair's gate (ACT)
#pragma unroll
  for (int m = 0; m < MM; m++) acc[m] = gate[m] = 0.f;
  auto consume = [&](const uint4 (&v)[kH], int h) {
    if (h >= total) return;
    const int r = h / hp, hr = h - r * hp, n = n0 + r, cb = hr * kHalfChunks + lane;
#pragma unroll
    for (int u = 0; u < kH; u++) {
      const int c = cb + 32 * u;
      if (c >= C) break;
      const int k = c * 16;
      float wf[16];
      if constexpr (BITS) e4m3x16_bits(v[u], wf);
      else e4m3x16(v[u], wf);
      const float sc = KSEG ? __ldg(scales + (size_t)n * nkb + k / kblock) : 1.f;
#pragma unroll
      for (int m = 0; m < MM; m++) {
        if (m >= M) break;
        float xv[16];
        load8(x + (size_t)m * K + k, xv);
        load8(x + (size_t)m * K + k + 8, xv + 8);
        float p0 = 0.f, p1 = 0.f;  // two chains: the FMA latency, not the issue rate, bounds one
#pragma unroll
        for (int i = 0; i < 16; i += 2) {
          p0 = fmaf(xv[i], wf[i], p0);
          p1 = fmaf(xv[i + 1], wf[i + 1], p1);
        }
        float p = p0 + p1;
        if constexpr (BITS) p *= kE4m3Unit;  // exact: a power of two
        acc[m] = KSEG ? fmaf(p, sc, acc[m]) : acc[m] + p;
      }
    }
    if (hr != hp - 1) return;  // row n goes on in the next half
    const float s = KSEG ? 1.f : __ldg(scales + n);
#pragma unroll
    for (int m = 0; m < MM; m++) {
      if (m >= M) break;
      float t = acc[m];
      acc[m] = 0.f;
      for (int off = 16; off > 0; off >>= 1) t += __shfl_xor_sync(0xffffffffu, t, off);
      t *= s;
      if constexpr (ACT >= 0) {
        if ((r & 1) == 0) {
          gate[m] = t + (bias ? bias[n] : 0.f);
        } else if (lane == 0) {
          static_cast<bf16 *>(y)[(size_t)m * (N / 2) + n / 2] = to_bf(activate(ACT, gate[m]) * (t + (bias ? bias[n] : 0.f)));
        }
      } else if (lane == 0) {
        const size_t i = (size_t)m * N + n;
        if (y_f32) {
          float *yf = static_cast<float *>(y);
          yf[i] = accumulate ? yf[i] + t : t;
        } else {
          static_cast<bf16 *>(y)[i] = to_bf(t);
        }
      }
    }
  };
  for (int h = 0; h < total; h += 2) {
    consume(a, h);
    load(a, h + 2);
    consume(b, h + 1);
    load(b, h + 3);
  }
}

template <int MM, int R, bool KSEG, int ACT, bool BITS>
void launch_one(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, const float *bias, int M,
                int N, int K, cudaStream_t st) {
  constexpr int kWarps = 8;
  launch_k(fp8_gemv_stream_kernel<MM, R, KSEG, ACT, BITS>, dim3(ceil_div(N, kWarps * R)), dim3(kWarps * 32), 0, st,
           x, (const uint8_t *)w.p, (const float *)w.scales, w.kblock, w.nkb(K), y, y_f32, accumulate, bias, M, N, K);
}

template <int MM, bool KSEG, bool BITS>
void launch_mm(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act, const float *bias,
               int M, int N, int K, cudaStream_t st) {
  switch (act) {
    case 0: return launch_one<MM, 4, KSEG, 0, BITS>(x, w, y, false, false, bias, M, N, K, st);
    case 1: return launch_one<MM, 4, KSEG, 1, BITS>(x, w, y, false, false, bias, M, N, K, st);
    case 2: return launch_one<MM, 4, KSEG, 2, BITS>(x, w, y, false, false, bias, M, N, K, st);
    default: break;
  }
  if (N >= 8192) launch_one<MM, 4, KSEG, -1, BITS>(x, w, y, y_f32, accumulate, nullptr, M, N, K, st);
  else launch_one<MM, 2, KSEG, -1, BITS>(x, w, y, y_f32, accumulate, nullptr, M, N, K, st);
}

template <bool KSEG, bool BITS>
void launch_kseg(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act, const float *bias,
                 int M, int N, int K, cudaStream_t st) {
  if (M <= 1) launch_mm<1, KSEG, BITS>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else if (M <= 2) launch_mm<2, KSEG, BITS>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else if (M <= 4) launch_mm<4, KSEG, BITS>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else launch_mm<8, KSEG, BITS>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
}

}  // namespace

void fp8_gemv_stream_launch(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                            const float *bias, int M, int N, int K, cudaStream_t st, bool bits) {
  const bool kseg = w.nkb(K) > 1;
  if (kseg && bits) launch_kseg<true, true>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else if (kseg) launch_kseg<true, false>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else if (bits) launch_kseg<false, true>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else launch_kseg<false, false>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
}

}  // namespace fgcu
