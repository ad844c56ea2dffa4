// Small-M GEMV on tensor cores: y[M, N] (+)= x[M, K] · w[N, K]^T for 2 <= M <= 16 tokens
// (decode at batch 2-16, speculative verification), at close to one token's weight stream.
//
// "Swap AB": mma.sync m16n8k16 (bf16 in, fp32 accumulate) takes 16 weight rows as A [16 x 16 k]
// and the tokens as B [16 k x 8 tokens] (two MMAs for M > 8), so every weight element is read
// once and multiplied on the tensor cores, not re-read per token as CUDA-core FMAs (the old
// M = 2..8 kernels lost to cuBLASLt for that reason: 6.1 ms for 2 tokens vs 5.1 for one, H100).
//
// A warp step is 32 k. Thread (g = lane / 4, t = lane % 4) loads 16 bytes (8 k) of weight rows g
// and g + 8 of each of its 16-row tiles at k0 + 8t, and 16 bytes of x at the same k for tokens g
// (and g + 8):
//
//   k0 + | 0 ...  7 | 8 ... 15 | 16 ... 23 | 24 ... 31 |
//        |   t = 0  |   t = 1  |   t = 2   |   t = 3   |   MMA 0: each thread's first 4 k,
//                                                          MMA 1: its last 4
//
// An m16n8k16 A fragment holds, in thread (g, t), rows g and g + 8 at k {2t, 2t+1, 2t+8, 2t+9};
// its B fragment holds those k of token g. Reading them as k0 + 8t + {0, 1, 2, 3} (MMA 0) and
// + {4, 5, 6, 7} (MMA 1) permutes the 16 k of each MMA the same way for A and B, which a dot
// product does not see. So each fragment register is one 32-bit word of a 16-byte load: no
// shuffles, no ldmatrix, and x needs no shared memory (each warp reads its own k slice of x
// once, from L1/L2, and uses each load for all of its rows).
//
// Block: kGemvSmallWarps warps split K (warp w takes steps w, w + 8, ...; N = 4096 gives 128-256
// blocks, not the 16-64 that one warp per K would); each warp covers RT 16-row tiles. With one
// tile a warp the grid is the resident blocks (FASTGEN_GEMV_PERSIST, PERSIST), each looping over
// tiles b, b + gridDim.x, ...: the next tile's first two pipeline halves are requested before
// this tile's partials meet, so an SM's weight stream does not drain at every tile (FP8 tiles are
// 64 KB at K = 4096: a block a tile spent a fifth of its life starting or finishing). Partials
// meet in shared memory and the block's threads write y (coalesced), so the gated form (rows
// interleaved gate_i, up_i) applies act(gate) * up there. Weights stream with 16-byte __ldcs
// loads, two pipeline halves of S steps each (one in flight while the other is multiplied);
// the first two halves are requested before pdl_wait, while the previous kernel finishes.
//
// Weight formats plug in as a loader W (the FP8 ones, fp8_gemv_small.cu: e4m3 rows widened to
// bf16 in registers):
//   typename W::Row                            one weight row's base (what row() returns)
//   typename W::Raw                            what one thread loads for kK k of one row
//   static constexpr int kK                    k a thread loads from a row at once: 8 (a warp step
//                                              of 32 k, as drawn above) or 16 (a step of 64 k:
//                                              thread t takes k0 + 16t .. + 15, four MMAs of 4 k
//                                              each, the same permutation for A and B)
//   static constexpr int kSteps                steps per pipeline half (S): 2 for 16-byte Raws,
//                                              4 for 8-byte ones (the same bytes in flight)
//   Row row(int n) const                       row n (0 <= n < N)
//   Raw load(Row r, int k) const               weights [n, k .. k + 8) of that row, k % 8 == 0
//   const void *src(Row r, int k) const        their address (STAGED: cp.async copies the Raw)
//   uint4 bf16x8(const Raw &v, Row r, int k)   those 8 weights (loaded at k; zeros when k >= K)
//                                              as bf16, k order (k: for per-K-block scales);
//                                              kK = 16: void bf16x16(v, r, k, uint4 (&o)[2])
//   float row_scale(int n) const               multiplies row n's dot products (epilogue)
//
// FOLD: x is an RMSNorm of residual rows (rms_fold.cuh), which every block builds in dynamic
// shared memory after pdl_wait ([M, K + kRmsPad] bf16; the pad spreads the 8 tokens' 16-byte
// loads of a step over the banks) and reads in place of x: the same values, so the same results.
//
// Deferred norm (FASTGEN_NORM_DEFER at 1-16 tokens): see DeferredNorm (rms_fold.cuh).
#pragma once
#include "cuda/common.cuh"
#include "cuda/cp_async.cuh"
#include "cuda/rms_fold.cuh"
#include "cuda/rope.cuh"

namespace fgcu {

constexpr int kGemvSmallMaxM = 16;
static_assert(kGemvSmallMaxM <= kDeferredNormMaxM, "a deferred norm's partial sums hold every token");
constexpr int kGemvSmallWarps = 8;

// bf16 weights [N, K] row-major (nn.Linear.weight): the loader of gemv_small.cu.
struct Bf16Rows {
  const bf16 *w;
  int K;
  using Row = const bf16 *;
  using Raw = uint4;
  static constexpr int kK = 8, kSteps = 2;
  __device__ __forceinline__ Row row(int n) const { return w + (size_t)n * K; }
  __device__ __forceinline__ Raw load(Row r, int k) const {
    return __ldcs(reinterpret_cast<const uint4 *>(r + k));
  }
  __device__ __forceinline__ const void *src(Row r, int k) const { return r + k; }
  __device__ __forceinline__ uint4 bf16x8(const Raw &v, Row, int) const { return v; }
  __device__ __forceinline__ float row_scale(int) const { return 1.f; }
};

namespace gemv_small_detail {

// d[16 x 8] += a[16 x 16] · b[16 x 8]: bf16 in, fp32 accumulate (sm_80+).
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Loader W's kK k of one row as bf16 (kK / 8 uint4, k order).
template <class W>
__device__ __forceinline__ void widen(const W &wl, const typename W::Raw &v, typename W::Row r, int k,
                                      uint4 (&o)[W::kK / 8]) {
  if constexpr (W::kK == 8) o[0] = wl.bf16x8(v, r, k);
  else wl.bf16x16(v, r, k, o);
}

}  // namespace gemv_small_detail

// One block: rows [blockIdx.x * 16 RT, + 16 RT) of y for all M tokens. NT = 8-token column
// blocks (1: M <= 8, 2: M <= 16). ACT >= 0: gated (y bf16 [M, N / 2], bias [N] or null);
// otherwise y [M, N] bf16, or fp32 (Y_F32) and added to (ACC). FOLD: x from rms (x unused).
// DN: dn, a deferred norm, read (kDnRead: x is its bf16(h * w)) or written (kDnWrite: Y_F32, ACC).
// PERSIST: a grid of the resident blocks, block b taking row tiles b, b + gridDim.x, ...; the
// next tile's first two pipeline halves are requested before this tile's epilogue, so a block's
// weight stream does not stop between tiles (FASTGEN_GEMV_PERSIST).
// ROPE: the qkv projection with RoPE and the K/V write in the epilogue (rope.cuh QkvPair; RT = 1,
// y bf16 = rp.qkv): tile t computes pairs 8t .. 8t + 7, pair 8t + g's rows as the tile's rows g and
// g + 8, then finishes them as the RoPE kernel would (q into y, K / V into the cache). The next
// kernel (attention) is let in only once the block's weights are streamed, as qkv_gemv_rope does.
enum { kDnNone = 0, kDnRead = 1, kDnWrite = 2 };
template <class W, int RT, int NT, int S, bool Y_F32, bool ACC, int ACT, bool FOLD = false, int DN = kDnNone,
          bool PERSIST = false, bool ROPE = false, bool STAGED = false>
__global__ void __launch_bounds__(kGemvSmallWarps * 32)
    gemv_small_kernel(W wl, const bf16 *__restrict__ x, void *__restrict__ y, const float *__restrict__ bias, int M,
                      int N, int K, RmsRows rms, DeferredNorm dn, RopeArgs rp) {
  static_assert(!ROPE || (RT == 1 && ACT < 0 && !Y_F32 && !FOLD && DN != kDnWrite), "RoPE: bf16 q/k/v rows, a tile a warp");
  static_assert(!STAGED || (RT == 1 && PERSIST && !FOLD), "staged weights: a tile a warp, the persistent grid");
  using gemv_small_detail::mma_bf16;
  using gemv_small_detail::widen;
  constexpr int KS = kGemvSmallWarps, ROWS = 16 * RT, PITCH = ROWS + 4;
  constexpr int KT = W::kK, XQ = KT / 8, STEP = 4 * KT;  // k a thread loads, its uint4s of x, k a warp step
  // Partials [warp][token][row]; the pitch puts a warp's 32 stores in 32 banks (2 PITCH % 32 = 8).
  __shared__ float red[KS][NT * 8][PITCH];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int tiles = (N + ROWS - 1) / ROWS;
  int tile = blockIdx.x, n0 = tile * ROWS;
  // Rows past N load row N - 1 and tokens past M load token M - 1: their outputs are not written.
  typename W::Row rows[RT][2];
  auto set_rows = [&](int first) {
    if constexpr (ROPE) {  // pair first / 2 + g: rows g and g + 8
      const QkvPair q = qkv_pair(rp, min(first / 2 + g, N / 2 - 1));
      rows[0][0] = wl.row(q.n0), rows[0][1] = wl.row(q.n1);
    } else {
#pragma unroll
      for (int r = 0; r < RT; r++)
#pragma unroll
        for (int h = 0; h < 2; h++) rows[r][h] = wl.row(min(first + 16 * r + 8 * h + g, N - 1));
    }
  };
  set_rows(n0);
  const bf16 *xr[NT];  // FOLD: set after pdl_wait, once x is built
  // if constexpr blocks stay braced here: nvcc 13.0 compiled the DN = 0 kernels without their main
  // loop when an unbraced `if constexpr (DN == kDnRead) for (...) ...;` stood before it (stop 26).
  if constexpr (!FOLD) {
#pragma unroll
    for (int j = 0; j < NT; j++) xr[j] = x + (size_t)min(8 * j + g, M - 1) * K;
  }
  const int steps = (K + STEP - 1) >> (KT == 8 ? 5 : 6);  // STEP = 32 or 64
  const int mine = steps > warp ? (steps - warp + KS - 1) / KS : 0;  // this warp's steps
  // Local step i is k0 = (warp + i KS) STEP; a k past K (the tail step, or i >= mine) loads zeros.
  auto k_of = [&](int i) { return (warp + i * KS) * STEP + t * KT; };

  float acc[RT][NT][4];
#pragma unroll
  for (int r = 0; r < RT; r++)
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
      for (int c = 0; c < 4; c++) acc[r][j][c] = 0.f;
  typename W::Raw wa[S][RT][2], wb[S][RT][2];
  uint4 xa[S][NT][XQ], xb[S][NT][XQ];
  auto load_w = [&](typename W::Raw (&v)[S][RT][2], int i0) {
#pragma unroll
    for (int s = 0; s < S; s++) {
      const int k = k_of(i0 + s);
#pragma unroll
      for (int r = 0; r < RT; r++)
#pragma unroll
        for (int h = 0; h < 2; h++)
          if (k < K) v[s][r][h] = wl.load(rows[r][h], k);
          else v[s][r][h] = typename W::Raw{};
    }
  };
  auto load_x = [&](uint4 (&v)[S][NT][XQ], int i0) {
#pragma unroll
    for (int s = 0; s < S; s++) {
      const int k = k_of(i0 + s);
#pragma unroll
      for (int j = 0; j < NT; j++)
#pragma unroll
        for (int q = 0; q < XQ; q++)
          v[s][j][q] = k < K ? *reinterpret_cast<const uint4 *>(xr[j] + k + 8 * q) : make_uint4(0, 0, 0, 0);
    }
  };
  // STAGED: each thread's weights for its next ST steps in flight through dynamic shared memory
  // (cp.async, one commit group a step; 256 bytes a thread, 64 KB a block), not registers.
  using Raw = typename W::Raw;
  constexpr int ST = STAGED ? 256 / (2 * (int)sizeof(Raw)) : 1;
  extern __shared__ __align__(16) unsigned char gemv_small_stage[];
  Raw *const stage = reinterpret_cast<Raw *>(gemv_small_stage);
  auto slot = [&](int i, int h) { return stage + ((i % ST) * 2 + h) * (KS * 32) + threadIdx.x; };
  auto issue = [&](int i) {  // step i into its slot (nothing past this warp's steps), one group
    if (i < mine) {
      const int k = k_of(i);
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const void *src = wl.src(rows[0][h], k < K ? k : 0);
        if constexpr (sizeof(Raw) == 16) cp_async16(slot(i, h), src, k < K);
        else cp_async8(slot(i, h), src, k < K);
      }
    }
    cp_async_commit();
  };
  auto load_x1 = [&](uint4 (&v)[NT][XQ], int i) {
    const int k = k_of(i);
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
      for (int q = 0; q < XQ; q++)
        v[j][q] = k < K && i < mine ? *reinterpret_cast<const uint4 *>(xr[j] + k + 8 * q) : make_uint4(0, 0, 0, 0);
  };
  auto mma_step = [&](const uint4 (&lo)[XQ], const uint4 (&hi)[XQ], const uint4 (&xv)[NT][XQ]) {
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
      for (int q = 0; q < XQ; q++) {
        mma_bf16(acc[0][j], lo[q].x, hi[q].x, lo[q].y, hi[q].y, xv[j][q].x, xv[j][q].y);
        mma_bf16(acc[0][j], lo[q].z, hi[q].z, lo[q].w, hi[q].w, xv[j][q].z, xv[j][q].w);
      }
  };
  auto first_weights = [&] {  // a tile's first weights: ST steps staged, or two register halves
    if constexpr (STAGED) {
      for (int i = 0; i < ST; i++) issue(i);
    } else {
      load_w(wa, 0);
      load_w(wb, S);
    }
  };
  auto first_x = [&] {
    if constexpr (!STAGED) {
      load_x(xa, 0);
      load_x(xb, S);
    }
  };
  auto mma_half = [&](const typename W::Raw (&v)[S][RT][2], const uint4 (&xv)[S][NT][XQ], int i0) {
#pragma unroll
    for (int s = 0; s < S; s++) {
      const int k = k_of(i0 + s);
#pragma unroll
      for (int r = 0; r < RT; r++) {
        uint4 lo[XQ], hi[XQ];  // rows g, g + 8
        widen(wl, v[s][r][0], rows[r][0], k, lo);
        widen(wl, v[s][r][1], rows[r][1], k, hi);
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
          for (int q = 0; q < XQ; q++) {
            mma_bf16(acc[r][j], lo[q].x, hi[q].x, lo[q].y, hi[q].y, xv[s][j][q].x, xv[s][j][q].y);
            mma_bf16(acc[r][j], lo[q].z, hi[q].z, lo[q].w, hi[q].w, xv[s][j][q].z, xv[s][j][q].w);
          }
      }
    }
  };

  // Weights are no step's output: in flight while the previous kernel finishes (launch_k).
  first_weights();
  if constexpr (FOLD) rms_prefetch(rms, K);
  pdl_wait();
  if constexpr (!ROPE) pdl_launch_dependents();
  if constexpr (FOLD) {
    extern __shared__ __align__(16) unsigned char gemv_small_xs[];
    bf16 *xs = reinterpret_cast<bf16 *>(gemv_small_xs);
    rms_to_shared(rms, M, K, xs, K + kRmsPad, &red[0][0][0]);  // red: M * 16 floats of scratch, free until the end
#pragma unroll
    for (int j = 0; j < NT; j++) xr[j] = xs + (size_t)min(8 * j + g, M - 1) * (K + kRmsPad);
  }
  // A deferred norm's scale per token, while the first x loads are in flight: warp w adds up
  // tokens w, w + 8's partial sums (lanes stride the blocks, then a butterfly: a fixed order).
  // Here rather than after the main loop: with the sums prefetched into L1 and added up after it,
  // FP8 b=1 lost the 2.5% this form gains (H100, bench/results/device-wave18-h100.md).
  static_assert(DN != kDnWrite || (Y_F32 && ACC && ACT < 0), "a deferred norm is written by a residual GEMV");
  __shared__ float dscale[DN == kDnRead ? kGemvSmallMaxM : 1];
  first_x();
  if constexpr (DN == kDnRead) {
    for (int m = warp; m < M; m += KS) {
      float ss = 0.f;
      for (int b = lane; b < dn.nb; b += 32) ss += dn.part[(size_t)b * kDeferredNormMaxM + m];
      for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
      if (lane == 0) dscale[m] = rsqrtf(ss / K + dn.eps);
    }
  }
  constexpr bool kWritesNorm = DN == kDnWrite;
  __shared__ float sq[kWritesNorm ? kGemvSmallMaxM : 1][kWritesNorm ? ROWS : 1];
  for (;;) {  // one tile; PERSIST: each of this block's tiles
    if constexpr (STAGED) {
      uint4 xc[NT][XQ], xn[NT][XQ];
      load_x1(xc, 0);
      for (int i = 0; i < mine; i++) {
        load_x1(xn, i + 1);
        cp_async_wait<ST - 1>();  // step i has landed
        const Raw v0 = *slot(i, 0), v1 = *slot(i, 1);
        const int k = k_of(i);
        uint4 lo[XQ], hi[XQ];
        widen(wl, v0, rows[0][0], k, lo);
        widen(wl, v1, rows[0][1], k, hi);
        issue(i + ST);  // the slot just read, refilled
        mma_step(lo, hi, xc);
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
          for (int q = 0; q < XQ; q++) xc[j][q] = xn[j][q];
      }
    } else {
      for (int i = 0; i < mine; i += 2 * S) {
        mma_half(wa, xa, i);
        if (i + 2 * S < mine) load_w(wa, i + 2 * S), load_x(xa, i + 2 * S);
        if (i + S < mine) mma_half(wb, xb, i + S);
        if (i + 3 * S < mine) load_w(wb, i + 3 * S), load_x(xb, i + 3 * S);
      }
    }
    const int next = PERSIST ? tile + (int)gridDim.x : tiles;
    if constexpr (ROPE) {
      if (next >= tiles) pdl_launch_dependents();  // this block's weights are streamed
    }
    if constexpr (PERSIST) {
      if (next < tiles) {  // the next tile's weights stream while this one's epilogue runs
        set_rows(next * ROWS);
        first_weights();
      }
    }

    // acc[r][j]: c0, c1 = row 16r + g, tokens 8j + 2t, +1; c2, c3 = row 16r + g + 8, same tokens.
#pragma unroll
    for (int r = 0; r < RT; r++)
#pragma unroll
      for (int j = 0; j < NT; j++)
#pragma unroll
        for (int c = 0; c < 4; c++) red[warp][8 * j + 2 * t + (c & 1)][16 * r + g + 8 * (c >> 1)] = acc[r][j][c];
    __syncthreads();
    // Token m's sum for the tile's row `row`, which is weight row n (n0 + row but with ROPE).
    auto total = [&](int m, int row, int n) {
      float v = 0.f;
#pragma unroll
      for (int w = 0; w < KS; w++) v += red[w][m][row];
      v *= wl.row_scale(n);
      if constexpr (DN == kDnRead) v *= dscale[m];
      return v;
    };
    if constexpr (ROPE) {  // token m, pair n0 / 2 + c: rows c and c + 8
      for (int e = threadIdx.x; e < M * 8; e += KS * 32) {
        const int m = e / 8, c = e % 8, pair = n0 / 2 + c;
        if (pair >= N / 2) continue;
        const QkvPair q = qkv_pair(rp, pair);
        const float x1 = total(m, c, q.n0), x2 = total(m, c + 8, q.n1);
        const int pos = rp.positions[m], blk = q.head >= rp.nh ? qkv_token_block(rp, m, pos) : 0;
        bf16 *q_row = static_cast<bf16 *>(y) + (size_t)m * N;
        if (rp.kv_fp8) qkv_pair_store<e4m3>(rp, q, pos, blk, x1, x2, q_row);
        else qkv_pair_store<bf16>(rp, q, pos, blk, x1, x2, q_row);
      }
    } else if constexpr (ACT >= 0) {  // y[m, n / 2] = act(gate + bias) * (up + bias), rows (gate, up) paired
      const int half = N / 2;
      for (int e = threadIdx.x; e < M * (ROWS / 2); e += KS * 32) {
        const int m = e / (ROWS / 2), c = e % (ROWS / 2), n = n0 + 2 * c;
        if (n >= N) continue;
        const float gb = bias ? bias[n] : 0.f, ub = bias ? bias[n + 1] : 0.f;
        static_cast<bf16 *>(y)[(size_t)m * half + n / 2] =
            to_bf(activate(ACT, total(m, 2 * c, n) + gb) * (total(m, 2 * c + 1, n + 1) + ub));
      }
    } else {
      // Writing a deferred norm: h^2 of every (token, row) of the block (sq), summed in row order below.
      for (int e = threadIdx.x; e < M * ROWS; e += KS * 32) {
        const int m = e / ROWS, c = e % ROWS, n = n0 + c;
        if (n >= N) {
          if constexpr (kWritesNorm) sq[m][c] = 0.f;
          continue;
        }
        const size_t i = (size_t)m * N + n;
        const float v = total(m, c, n);
        if (Y_F32) {
          float *yf = static_cast<float *>(y);
          const float hv = ACC ? yf[i] + v : v;
          yf[i] = hv;
          if constexpr (kWritesNorm) {
            dn.x_out[i] = to_bf(hv * dn.w_next[n]);
            sq[m][c] = hv * hv;
          }
        } else {
          static_cast<bf16 *>(y)[i] = to_bf(v);
        }
      }
      if constexpr (kWritesNorm) {
        __syncthreads();
        if (threadIdx.x < M) {
          float ss = 0.f;
          for (int c = 0; c < ROWS; c++) ss += sq[threadIdx.x][c];
          dn.part_out[(size_t)tile * kDeferredNormMaxM + threadIdx.x] = ss;
        }
      }
    }
    if (next >= tiles) break;
    // PERSIST: the next tile (red, sq: read above, written again after its main loop)
    tile = next, n0 = tile * ROWS;
    __syncthreads();
#pragma unroll
    for (int r = 0; r < RT; r++)
#pragma unroll
      for (int j = 0; j < NT; j++)
#pragma unroll
        for (int c = 0; c < 4; c++) acc[r][j][c] = 0.f;
    first_x();
  }
}

// 16-row tiles per warp (RT): 1, or 2 with FASTGEN_GEMV_ROWS=32 (gemv_small.cu says why).
int gemv_small_rt();
// FASTGEN_GEMV_PERSIST: 0 one block a row tile; 1 a grid of the resident blocks looping over the
// tiles (PERSIST); n > 1 a grid of at most n such blocks (tests: many tiles a block).
int gemv_small_persist();

// Blocks of KERNEL (kGemvSmallWarps warps, `smem` bytes of dynamic shared memory) resident at
// once on the current device: its occupancy times the SMs (cached per device, instantiation and
// `slot`: the FOLD kernels' x takes M rows of shared memory, so they cache one value per M).
template <auto KERNEL>
int gemv_small_resident(size_t smem, int slot) {
  static int cached[64][kGemvSmallMaxM + 1];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64 || slot < 0 || slot > kGemvSmallMaxM) return 1;
  int v = __atomic_load_n(&cached[dev][slot], __ATOMIC_RELAXED);
  if (v > 0) return v;
  int per_sm = 0, sms = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, KERNEL, kGemvSmallWarps * 32, smem) != cudaSuccess) per_sm = 1;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) sms = 1;
  v = (per_sm > 0 ? per_sm : 1) * (sms > 0 ? sms : 1);
  __atomic_store_n(&cached[dev][slot], v, __ATOMIC_RELAXED);
  return v;
}

// FASTGEN_GEMV_STAGED: the persistent kernels stream weights through shared memory (STAGED).
bool gemv_small_staged();
constexpr size_t kGemvSmallStageBytes = 256 * kGemvSmallWarps * 32;  // STAGED: 256 bytes a thread

template <auto KERNEL>
void gemv_small_allow_smem();

// Launches the plain (KERNEL) or, under FASTGEN_GEMV_PERSIST, the persistent (PERSISTENT; with
// FASTGEN_GEMV_STAGED and no other dynamic shared memory, STAGED_K) instantiation over `tiles`
// row tiles, with `smem` bytes of dynamic shared memory (FOLD: M rows of x, `slot` = M). One
// 16-row tile a warp only (RT = 1, the default: CAN).
template <bool CAN, auto KERNEL, auto PERSISTENT, auto STAGED_K, class... A>
void launch_gemv_small_tiles(int tiles, size_t smem, int slot, cudaStream_t s, A... args) {
  const dim3 block(kGemvSmallWarps * 32);
  const int persist = CAN ? gemv_small_persist() : 0;
  if (persist <= 0) return launch_k(KERNEL, dim3(tiles), block, smem, s, args...);
  if (smem == 0 && gemv_small_staged()) {
    gemv_small_allow_smem<STAGED_K>();
    const int cap = persist == 1 ? gemv_small_resident<STAGED_K>(kGemvSmallStageBytes, 0) : persist;
    return launch_k(STAGED_K, dim3(tiles < cap ? tiles : cap), block, kGemvSmallStageBytes, s, args...);
  }
  const int cap = persist == 1 ? gemv_small_resident<PERSISTENT>(smem, slot) : persist;
  launch_k(PERSISTENT, dim3(tiles < cap ? tiles : cap), block, smem, s, args...);
}

// FOLD launches: at most 8 tokens (one 8-token column block: with two, the prologue's registers
// come on top of 128 and one block fits an SM, not two), and x as M rows of K + kRmsPad bf16 in
// dynamic shared memory, capped so that two blocks still share an SM beside their static partials.
constexpr int kGemvSmallRmsMaxM = 8;
inline size_t gemv_small_rms_bytes(int M, int K) { return (size_t)M * (K + kRmsPad) * 2; }
constexpr size_t kGemvSmallRmsMaxBytes = 88 * 1024;

// Lets KERNEL take kGemvSmallRmsMaxBytes of dynamic shared memory on the current device (once per
// device and instantiation; a race only repeats the same call).
template <auto KERNEL>
void gemv_small_allow_smem() {
  static unsigned configured = 0;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return;  // the launch then reports it
  const unsigned bit = 1u << (dev & 31);
  if (__atomic_load_n(&configured, __ATOMIC_ACQUIRE) & bit) return;
  if (cudaFuncSetAttribute(KERNEL, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kGemvSmallRmsMaxBytes) == cudaSuccess)
    __atomic_fetch_or(&configured, bit, __ATOMIC_RELEASE);
}

template <class W, int RT, int NT, int ACT, bool FOLD, int DN = kDnNone>
void launch_gemv_small_act(W wl, const bf16 *x, void *y, const float *bias, bool y_f32, bool acc,
                           int M, int N, int K, const RmsRows &rms, const DeferredNorm &dn, cudaStream_t s) {
  constexpr int S = W::kSteps;
  const int tiles = ceil_div(N, 16 * RT);
#define FG_SMALL_TILES(Y_F32, ACC, ACT_, DN_)                                                                  \
  launch_gemv_small_tiles<RT == 1, gemv_small_kernel<W, RT, NT, S, Y_F32, ACC, ACT_, false, DN_>,              \
                          gemv_small_kernel<W, RT, NT, S, Y_F32, ACC, ACT_, false, DN_, RT == 1>,               \
                          gemv_small_kernel<W, RT, NT, S, Y_F32, ACC, ACT_, false, DN_, RT == 1, false, RT == 1>>( \
      tiles, 0, 0, s, wl, x, y, bias, M, N, K, rms, dn, RopeArgs())
  if constexpr (FOLD) {  // x from rms; y bf16, not accumulated (qkv, gated MLP input)
    constexpr auto kernel = gemv_small_kernel<W, RT, NT, S, false, false, ACT, true>;
    constexpr auto persistent = gemv_small_kernel<W, RT, NT, S, false, false, ACT, true, kDnNone, RT == 1>;
    gemv_small_allow_smem<kernel>();
    gemv_small_allow_smem<persistent>();
    launch_gemv_small_tiles<RT == 1, kernel, persistent, persistent>(tiles, gemv_small_rms_bytes(M, K), M, s, wl, x,
                                                                     y, bias, M, N, K, rms, dn, RopeArgs());
  } else if constexpr (DN == kDnWrite) {  // y is h: fp32, accumulated
    FG_SMALL_TILES(true, true, -1, DN);
  } else if constexpr (ACT >= 0 || DN == kDnRead) {  // gated, or qkv: y bf16
    FG_SMALL_TILES(false, false, ACT, DN);
  } else if (y_f32 && acc) {
    FG_SMALL_TILES(true, true, -1, kDnNone);
  } else if (y_f32) {
    FG_SMALL_TILES(true, false, -1, kDnNone);
  } else {
    FG_SMALL_TILES(false, false, -1, kDnNone);
  }
#undef FG_SMALL_TILES
}

// Launches the kernel for loader `wl` with rt = gemv_small_rt(): plain (ACT < 0; y_f32 and acc
// as gemm()) or gated (ACT 0..2, bias or null). Needs 1 <= M <= 16, K % 8 == 0 (16-byte rows),
// 16-byte aligned x and weight rows, N even when gated. FOLD: x is rms's RMSNorm rows instead (y
// bf16, not accumulated; M <= kGemvSmallRmsMaxM, gemv_small_rms_bytes(M, K) <= kGemvSmallRmsMaxBytes).
// A deferred norm (rms_fold.cuh), one 16-row tile a warp whatever rt: dn.part set, read (x is its
// bf16(h * w), y bf16: ACT < 0 as gemm()'s bf16 output); dn.x_out set, written (ACT < 0, y fp32 h,
// accumulated).
template <class W, int ACT, bool FOLD = false>
void launch_gemv_small(W wl, const bf16 *x, void *y, const float *bias, bool y_f32, bool acc, int M,
                       int N, int K, int rt, cudaStream_t s, const RmsRows &rms = RmsRows(),
                       const DeferredNorm &dn = DeferredNorm()) {
  if constexpr (FOLD) {  // M <= 8 (gemv_small_rms_fits)
    if (rt == 2) launch_gemv_small_act<W, 2, 1, ACT, true>(wl, x, y, bias, false, false, M, N, K, rms, dn, s);
    else launch_gemv_small_act<W, 1, 1, ACT, true>(wl, x, y, bias, false, false, M, N, K, rms, dn, s);
  } else if (dn.part != nullptr) {
    if (M > 8) launch_gemv_small_act<W, 1, 2, ACT, false, kDnRead>(wl, x, y, bias, false, false, M, N, K, rms, dn, s);
    else launch_gemv_small_act<W, 1, 1, ACT, false, kDnRead>(wl, x, y, bias, false, false, M, N, K, rms, dn, s);
  } else if (dn.x_out != nullptr) {
    if constexpr (ACT < 0) {
      if (M > 8) launch_gemv_small_act<W, 1, 2, ACT, false, kDnWrite>(wl, x, y, bias, true, true, M, N, K, rms, dn, s);
      else launch_gemv_small_act<W, 1, 1, ACT, false, kDnWrite>(wl, x, y, bias, true, true, M, N, K, rms, dn, s);
    }
  } else if (rt == 2) {
    if (M > 8) launch_gemv_small_act<W, 2, 2, ACT, false>(wl, x, y, bias, y_f32, acc, M, N, K, rms, dn, s);
    else launch_gemv_small_act<W, 2, 1, ACT, false>(wl, x, y, bias, y_f32, acc, M, N, K, rms, dn, s);
  } else {
    if (M > 8) launch_gemv_small_act<W, 1, 2, ACT, false>(wl, x, y, bias, y_f32, acc, M, N, K, rms, dn, s);
    else launch_gemv_small_act<W, 1, 1, ACT, false>(wl, x, y, bias, y_f32, acc, M, N, K, rms, dn, s);
  }
}

// The qkv projection of rp's layer with RoPE and the K/V write in its epilogue (ROPE): q rows
// rotated into rp.qkv [M, N] (K / V columns left unwritten), K and V into the cache; x read as
// launch_gemv_small's (dn.part set: a deferred norm read). Where qkv_rope_fusable and the
// small-M kernel takes M (1 <= M <= 16), one 16-row tile a warp (gemv_small_rt() == 1).
template <class W>
void launch_gemv_small_rope(W wl, const bf16 *x, const RopeArgs &rp, int M, int N, int K, const DeferredNorm &dn,
                            cudaStream_t s) {
  constexpr int S = W::kSteps;
  RopeArgs p = rp;
  if (!p.inv_freq) p.rot = 0;
  const int tiles = ceil_div(N, 16);
#define FG_SMALL_ROPE(NT, DN_)                                                                                      \
  launch_gemv_small_tiles<true, gemv_small_kernel<W, 1, NT, S, false, false, -1, false, DN_, false, true>,          \
                          gemv_small_kernel<W, 1, NT, S, false, false, -1, false, DN_, true, true>,                 \
                          gemv_small_kernel<W, 1, NT, S, false, false, -1, false, DN_, true, true, true>>(          \
      tiles, 0, 0, s, wl, x, (void *)p.qkv, (const float *)nullptr, M, N, K, RmsRows(), dn, p)
  if (dn.part != nullptr) {
    if (M > 8) FG_SMALL_ROPE(2, kDnRead);
    else FG_SMALL_ROPE(1, kDnRead);
  } else if (M > 8) {
    FG_SMALL_ROPE(2, kDnNone);
  } else {
    FG_SMALL_ROPE(1, kDnNone);
  }
#undef FG_SMALL_ROPE
}

// bf16 weights (gemv_small.cu). gemv_small: y[M, N] as gemm(); gemv_small_gated: as gemv_gated().
// Both need 2 <= M <= kGemvSmallMaxM and K % 8 == 0; gated needs N even and act in 0..2.
// dn: a deferred norm read or (gemv_small, y_f32 and acc) written.
void gemv_small(const bf16 *x, const bf16 *w, void *y, bool y_f32, bool acc, int M, int N, int K,
                cudaStream_t s, const DeferredNorm &dn = DeferredNorm());
void gemv_small_gated(const bf16 *x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N,
                      int K, cudaStream_t s, const DeferredNorm &dn = DeferredNorm());
// qkv with RoPE and the K/V write (launch_gemv_small_rope) on bf16 weights.
void gemv_small_rope(const bf16 *x, const bf16 *w, const RopeArgs &rp, int M, int N, int K, cudaStream_t s,
                     const DeferredNorm &dn = DeferredNorm());
// The same with x given as RMSNorm rows (FOLD), y bf16 not accumulated; where gemv_small_rms_fits.
bool gemv_small_rms_fits(int M, int K);
void gemv_small_rms(const RmsRows &x, const bf16 *w, bf16 *y, int M, int N, int K, cudaStream_t s);
void gemv_small_rms_gated(const RmsRows &x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N,
                          int K, cudaStream_t s);

}  // namespace fgcu
