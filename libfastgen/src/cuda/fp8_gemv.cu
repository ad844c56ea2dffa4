// FP8 weight-streaming GEMV kernels: variant 0 and the variant dispatch (fp8_gemv.cuh has the layout
// of the work).
//
// Napkin math (H100, Llama-2-7B decode b=1): 6.5 GB of E4M3 projections a token at ~3.0 TB/s
// copy bandwidth is ~2.2 ms; per 16-byte chunk a lane issues 1 load, 8 cvt.f16x2.e4m3x2, 8 f16x2
// -> f32 pairs and 16 FMA per row of x, about 60 instructions at M = 1: under half of what the
// SMs issue while DRAM delivers the chunks, so M = 1 and 2 stay bandwidth-bound; by M = 4 the FMAs
// catch up (FASTGEN_FP8_GEMV_MAX_M moves the hand-over to cuBLASLt).
#include "cuda/fp8_gemv.cuh"

namespace fgcu {
namespace {

// One warp per R rows n0 .. n0 + R - 1; MM >= M rows of x (the rest skipped); 256 threads.
// KSEG: scales [N, nkb] applied per 16-chunk (k / kblock); else scales [N] applied once.
// ACT >= 0: R == 2, the rows are a (gate, up) pair, y bf16 [M, N / 2].
// PIPE: the next round of loads is issued before this one is multiplied (rows longer than one
// round: down's K = 11008 takes three), as the bf16 narrow GEMV does (gemm.cu gemv_pipe_kernel).
template <int MM, int R, bool KSEG, int ACT, bool PIPE = false>
__global__ void __launch_bounds__(256)
    fp8_gemv_kernel(const bf16 *__restrict__ x, const uint8_t *__restrict__ w, const float *__restrict__ scales,
                    int kblock, int nkb, void *__restrict__ y, bool y_f32, bool accumulate,
                    const float *__restrict__ bias, int M, int N, int K) {
  constexpr int U = 8 / R;  // 16-byte loads in flight per row and lane
  const int lane = threadIdx.x & 31;
  const int n0 = (blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * R;
  const bool live = n0 < N;  // dead warps still pass pdl_wait below
  const int C = K >> 4;      // 16-value chunks per row
  int row[R];
  const uint8_t *wr[R];
#pragma unroll
  for (int r = 0; r < R; r++) {
    row[r] = live ? min(n0 + r, N - 1) : 0;
    wr[r] = w + (size_t)row[r] * K;
  }
  uint4 wv[R][U];
  auto load_round = [&](uint4 (&v)[R][U], int c0) {
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
      for (int u = 0; u < U; u++) {
        const int c = c0 + u * 32;
        v[r][u] = c < C ? __ldcs(reinterpret_cast<const uint4 *>(wr[r] + (size_t)c * 16)) : make_uint4(0, 0, 0, 0);
      }
  };
  // The first round of weights is in flight while the previous kernel finishes (launch_k).
  if (live) load_round(wv, lane);
  pdl_wait();
  pdl_launch_dependents();
  if (!live) return;
  float acc[MM][R];
#pragma unroll
  for (int m = 0; m < MM; m++)
#pragma unroll
    for (int r = 0; r < R; r++) acc[m][r] = 0.f;
  for (int c0 = lane; c0 < C; c0 += U * 32) {
    uint4 nx[PIPE ? R : 1][PIPE ? U : 1];
    const bool more = PIPE && c0 + U * 32 < C;
    if constexpr (PIPE) {
      if (more) load_round(nx, c0 + U * 32);
    } else if (c0 != lane) {
      load_round(wv, c0);
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int c = c0 + u * 32;
      if (c >= C) break;
      const int k = c * 16;
      float wf[R][16], sc[R];
      const int seg = KSEG ? k / kblock : 0;
#pragma unroll
      for (int r = 0; r < R; r++) {
        e4m3x16(wv[r][u], wf[r]);
        sc[r] = KSEG ? __ldg(scales + (size_t)row[r] * nkb + seg) : 1.f;
      }
#pragma unroll
      for (int m = 0; m < MM; m++) {
        if (m >= M) break;
        float xv[16];
        load8(x + (size_t)m * K + k, xv);
        load8(x + (size_t)m * K + k + 8, xv + 8);
#pragma unroll
        for (int r = 0; r < R; r++) {
          float p0 = 0.f, p1 = 0.f;  // two chains: the FMA latency, not the issue rate, bounds one
#pragma unroll
          for (int i = 0; i < 16; i += 2) {
            p0 = fmaf(xv[i], wf[r][i], p0);
            p1 = fmaf(xv[i + 1], wf[r][i + 1], p1);
          }
          acc[m][r] = KSEG ? fmaf(p0 + p1, sc[r], acc[m][r]) : acc[m][r] + (p0 + p1);
        }
      }
    }
    if constexpr (PIPE) {
      if (more)
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
          for (int u = 0; u < U; u++) wv[r][u] = nx[r][u];
    }
  }
#pragma unroll
  for (int m = 0; m < MM; m++)
#pragma unroll
    for (int r = 0; r < R; r++)
      for (int off = 16; off > 0; off >>= 1) acc[m][r] += __shfl_xor_sync(0xffffffffu, acc[m][r], off);
  if (lane != 0) return;
  float s[R];
#pragma unroll
  for (int r = 0; r < R; r++) s[r] = KSEG ? 1.f : __ldg(scales + row[r]);
#pragma unroll
  for (int m = 0; m < MM; m++) {
    if (m >= M) break;
    if constexpr (ACT >= 0) {
      const float g = acc[m][0] * s[0] + (bias ? bias[n0] : 0.f);
      const float u = acc[m][1] * s[1] + (bias ? bias[n0 + 1] : 0.f);
      static_cast<bf16 *>(y)[(size_t)m * (N / 2) + n0 / 2] = to_bf(activate(ACT, g) * u);
    } else {
#pragma unroll
      for (int r = 0; r < R; r++) {
        if (n0 + r >= N) break;
        const float v = acc[m][r] * s[r];
        const size_t i = (size_t)m * N + n0 + r;
        if (y_f32) {
          float *yf = static_cast<float *>(y);
          yf[i] = accumulate ? yf[i] + v : v;
        } else {
          static_cast<bf16 *>(y)[i] = to_bf(v);
        }
      }
    }
  }
}

template <int MM, int R, bool KSEG, int ACT, bool PIPE = false>
void launch_one(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, const float *bias, int M,
                int N, int K, cudaStream_t st) {
  constexpr int kWarps = 8;
  launch_k(fp8_gemv_kernel<MM, R, KSEG, ACT, PIPE>, dim3(ceil_div(N, kWarps * R)), dim3(kWarps * 32), 0, st, x,
           (const uint8_t *)w.p, (const float *)w.scales, w.kblock, w.nkb(K), y, y_f32, accumulate, bias, M, N, K);
}

template <int MM, bool KSEG>
void launch_mm(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act, const float *bias,
               int M, int N, int K, cudaStream_t st) {
  // FASTGEN_FP8_GEMV_DEPTH=2: every shape at M <= 2 pipelined (the next round in flight while
  // this one is multiplied: two rounds, 8 KB, a warp, not one), wide rows and gated pairs too,
  // whose 4096-k FP8 row pair takes two rounds of 4 loads that today go out one after the other.
  // 96-109 registers (not 60-78): 2 blocks an SM, not 4, so the bytes in flight a SM stay 128 KB;
  // what changes is that no warp waits with nothing requested. Only when loads are issued
  // changes, not the sums: bit-identical.
  constexpr bool kPipe2 = MM <= 2;
  const bool deep = kPipe2 && fg_knob_int(FG_KNOB_FP8_GEMV_DEPTH) >= 2;
  switch (act) {
    case 0: return deep ? launch_one<MM, 2, KSEG, 0, kPipe2>(x, w, y, false, false, bias, M, N, K, st)
                        : launch_one<MM, 2, KSEG, 0>(x, w, y, false, false, bias, M, N, K, st);
    case 1: return deep ? launch_one<MM, 2, KSEG, 1, kPipe2>(x, w, y, false, false, bias, M, N, K, st)
                        : launch_one<MM, 2, KSEG, 1>(x, w, y, false, false, bias, M, N, K, st);
    case 2: return deep ? launch_one<MM, 2, KSEG, 2, kPipe2>(x, w, y, false, false, bias, M, N, K, st)
                        : launch_one<MM, 2, KSEG, 2>(x, w, y, false, false, bias, M, N, K, st);
    default: break;
  }
  // Two rows a warp for wide outputs (qkv, gate_up), as the bf16 GEMV measured best.
  // Narrow ones one row a warp, pipelined when a row takes more than one round of 8 loads and
  // at M <= 2 (more rows of x would hold twice the registers).
  if (N >= 8192 && deep) launch_one<MM, 2, KSEG, -1, kPipe2>(x, w, y, y_f32, accumulate, nullptr, M, N, K, st);
  else if (N >= 8192) launch_one<MM, 2, KSEG, -1>(x, w, y, y_f32, accumulate, nullptr, M, N, K, st);
  else if (MM <= 2 && K > 8 * 16 * 32 && (deep || fg_knob_int(FG_KNOB_GEMV_PIPE)))
    launch_one<MM, 1, KSEG, -1, (MM <= 2)>(x, w, y, y_f32, accumulate, nullptr, M, N, K, st);
  else launch_one<MM, 1, KSEG, -1>(x, w, y, y_f32, accumulate, nullptr, M, N, K, st);
}

template <bool KSEG>
void launch_kseg(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act, const float *bias,
                 int M, int N, int K, cudaStream_t st) {
  if (M <= 1) launch_mm<1, KSEG>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else if (M <= 2) launch_mm<2, KSEG>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else if (M <= 4) launch_mm<4, KSEG>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else launch_mm<8, KSEG>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
}

}  // namespace

void fp8_gemv_launch(const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int act,
                     const float *bias, int M, int N, int K, cudaStream_t st) {
  if (w.nkb(K) > 1) launch_kseg<true>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
  else launch_kseg<false>(x, w, y, y_f32, accumulate, act, bias, M, N, K, st);
}

}  // namespace fgcu
