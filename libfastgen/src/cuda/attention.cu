// Paged flash attention (see attention.cuh): bf16 tensor-core math (mma.sync m16n8k16, sm_80+),
// fp32 online softmax in the log2 domain, K/V tiles gathered from the paged pool with cp.async
// into padded shared memory (row stride head_dim + 8 keeps ldmatrix free of bank conflicts),
// double buffered.
//
//   per CTA: Q tile [BM, HD] -> smem once; for each key tile (64 keys): S = Q K^T (mma), mask
//   (causal, window, range; only on tiles that cross the diagonal or the window edge),
//   online softmax, O += P V (mma, V through ldmatrix.trans)
//
// FP8 caches (kv_fp8; every kernel is templated on the cache element KV, kv_fp8.cuh): cp.async
// brings each E4M3 K/V tile (half the bytes) into a staging buffer, double buffered; the CTA then
// widens it to bf16 (exact) into one bf16 K/V tile, which the same MMA code reads. k_scale joins
// the softmax scale and v_scale the output's 1 / l, so no element is multiplied. The bf16
// instantiations compile to the code they were before the template. FASTGEN_ATTN_FP8_DIRECT=1
// runs FP8 narrow tiles in cuda/attention_fp8_direct.cu instead (K/V straight into registers).
#include "cuda/attention.cuh"
#include "cuda/attention_fp8_direct.cuh"
#include "cuda/attention_hopper.cuh"
#include "cuda/attn_splits.cuh"
#include "cuda/cp_async.cuh"
#include "cuda/kv_fp8.cuh"
#include "cuda/ldmatrix.cuh"

#include <stdlib.h>
#include <string.h>

namespace fgcu {
namespace {

constexpr int kThreads = 128;

// bf16: Q [BM][HD + 8], K and V [2][BN][HD + 8]. FP8: Q, K and V [1][BN][HD + 8] (the widened
// tile), then the E4M3 staging K and V [2][BN][HD].
template <int HD, int WR, int MR, int BN, typename KV>
constexpr int smem_bytes() {
  if constexpr (kv_is_fp8<KV>()) return (16 * WR * MR + 2 * BN) * (HD + 8) * 2 + 4 * BN * HD;
  return (16 * WR * MR + 4 * BN) * (HD + 8) * 2;
}

// Launch constants beside AttnArgs (set by launch()).
struct KernelCfg {
  int pieces;       // wide: CTAs per host tile (its rows / BM); CTA i runs piece i % pieces
  unsigned bs_mul;  // n / block_size == (umulhi(n, bs_mul) + n) >> bs_shift for 0 <= n < 2^31
  int bs_shift;
  int trigger;      // call pdl_launch_dependents at the start (attn_pdl_mode() == 2)
};

// How attention takes part in programmatic dependent launch (FASTGEN_PDL_ATTN, read once):
// 0: plain launches; 1: launched with launch_k (its start overlaps the RoPE kernel's end), the
// next kernel starts when attention ends; 2: as 1, and the next kernel's blocks (the o GEMV,
// which then prefetches weights) are let in as soon as attention starts.
int attn_pdl_mode() {
  static const int mode = [] {
    const int m = fg_knob_int(FG_KNOB_PDL_ATTN);
    return m >= 0 && m <= 2 ? m : 1;
  }();
  return mode;
}

// WR = warps along rows, MR = 16-row blocks per warp, BN = keys per K/V tile (64; 32 for tries):
//   WR 4, MR 2: 128-row tiles, warp w owns rows [32w, 32w + 32) and all keys of a K/V tile;
//               every K and V fragment read from shared memory feeds two MMAs (half the smem
//               traffic per FLOP of MR 1, and smem bandwidth is what bounds this kernel)
//   WR 4, MR 1: 64-row tiles, warp w owns rows [16w, 16w + 16)
//   WR 1, MR 1: 16-row tiles, warp w takes keys [16w, 16w + 16) of each 64-key tile
// KV: the cache's element, bf16 or e4m3 (see the top of the file).
template <int HD, int WR, int MR, int BN, typename KV>
__global__ void __launch_bounds__(kThreads) attn_kernel(AttnArgs p, KernelCfg cfg) {
  static_assert(WR == 4 || MR == 1, "narrow tiles have one row block per warp");
  static_assert(WR == 4 || BN == 64, "the narrow merge reuses the K/V buffers of 64-key tiles");
  constexpr bool F8 = kv_is_fp8<KV>();
  constexpr int RW = 16 * MR, BM = RW * WR, WK = 4 / WR, KW = BN / WK, LD = HD + 8, CH = HD / 8;
  // cp.async moves 16-byte chunks of EPC elements, CK a key row; KB bf16 K/V tiles (FP8: one)
  constexpr int EPC = 16 / (int)sizeof(KV), CK = HD / EPC, KB = F8 ? 1 : 2;
  static_assert((BN * CH) % kThreads == 0, "K/V tile / thread mismatch");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16 *Qs = reinterpret_cast<bf16 *>(smem_raw);  // [BM][LD]
  bf16 *Ks = Qs + BM * LD;                         // [KB][BN][LD]
  bf16 *Vs = Ks + KB * BN * LD;                    // [KB][BN][LD]
  // Where cp.async puts a K/V tile: bf16 straight into Ks / Vs; FP8 into the E4M3 staging
  // K8 / V8 [2][BN][HD], which widen() turns into Ks / Vs.
  e4m3 *K8 = reinterpret_cast<e4m3 *>(Vs + KB * BN * LD), *V8 = K8 + 2 * BN * HD;
  KV *const Kd = F8 ? reinterpret_cast<KV *>(K8) : reinterpret_cast<KV *>(Ks);
  KV *const Vd = F8 ? reinterpret_cast<KV *>(V8) : reinterpret_cast<KV *>(Vs);
  constexpr int LDD = F8 ? HD : LD;  // row stride of Kd / Vd (elements)

  const int splits = WR == 1 ? p.splits : 1, per = WR == 1 ? p.splits : cfg.pieces;
  // Wide tiles run last-first: the last tiles of a sequence see the most keys, so the heaviest
  // CTAs start in the first wave and the tail is short.
  const int tile_id = WR == 1 ? blockIdx.x / per : p.num_wide - 1 - blockIdx.x / per;
  const int split = WR == 1 ? blockIdx.x % per : 0, kvh = blockIdx.y;
  AttnTile tile = (WR == 1 ? p.narrow : p.wide)[tile_id];
  // Tiles, lengths and block tables were uploaded before the step; q and this step's K/V come
  // from the kernel before (launch_k): wait for it before the first read of them.
  const int tok0 = p.cu_seqlens[tile.seq], ctx = p.context_lens[tile.seq];
  const int *btab = p.block_indices + p.block_indptr[tile.seq];
  pdl_wait();
  if (cfg.trigger) pdl_launch_dependents();
  if (WR == 4) {
    tile.row_begin += (blockIdx.x % per) * BM;
    if (tile.row_begin >= tile.row_end) return;  // the empty second piece of a short last tile
    tile.row_end = min(tile.row_end, tile.row_begin + BM);
  }
  const int G = p.num_heads / p.num_kv_heads;
  const int pos_first = ctx + tile.row_begin / G, pos_last = ctx + (tile.row_end - 1) / G;
  const int kv_lo = p.window > 0 ? max(0, pos_first - p.window + 1) : 0;
  const int len = pos_last - kv_lo + 1;
  const int chunk = ((len + splits - 1) / splits + BN - 1) / BN * BN;
  const int s_lo = kv_lo + split * chunk;
  const int s_hi = min(pos_last, s_lo + chunk - 1);
  const int n_tiles = s_hi >= s_lo ? (s_hi - s_lo) / BN + 1 : 0;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wr = warp % WR, wk = warp / WR;
  // This warp's rows [wrow0, wrow0 + RW) and the positions of its first and last real row (rows
  // past row_end are zero in Qs, never written, and so need no mask).
  const int wrow0 = tile.row_begin + wr * RW;
  const bool live = wrow0 < tile.row_end;
  const int wq_lo = ctx + wrow0 / G, wq_hi = ctx + (min(tile.row_end, wrow0 + RW) - 1) / G;

#pragma unroll
  for (int it = 0; it < (BM * CH + kThreads - 1) / kThreads; it++) {
    const int i = tid + it * kThreads;
    if (i >= BM * CH) break;
    const int row = i / CH, c = i % CH, r = tile.row_begin + row;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < tile.row_end)
      v = *reinterpret_cast<const uint4 *>(p.q + (size_t)(tok0 + r / G) * p.q_stride +
                                           (kvh * G + r % G) * HD + c * 8);
    *reinterpret_cast<uint4 *>(Qs + row * LD + c * 8) = v;
  }
  // K/V tile loads, each warp instruction covering whole 128-byte lines. Rows a multiple of 128
  // bytes (CK % 8 == 0): thread t takes keys t / 8 + 16q, 16-byte chunks t % 8 + 8h (BN / 16
  // block-table reads a tile, not BN * CK / 128); other rows: chunk i = tid + it * kThreads is
  // key i / CK, chunk i % CK. Unrolled, so the block-table reads of a tile go out together
  // instead of each cp.async waiting on its own.
  auto key_offset = [&](int pos) {  // element offset of position pos in the pool
    const int bi = (int)((__umulhi((unsigned)pos, cfg.bs_mul) + (unsigned)pos) >> cfg.bs_shift);
    return (((size_t)btab[bi] * p.num_kv_heads + kvh) * p.block_size + (pos - bi * p.block_size)) * HD;
  };
  auto load_kv = [&](int k0, int buf) {
    if constexpr (CK % 8 == 0) {
      constexpr int KS = kThreads / 8;  // keys a step
#pragma unroll
      for (int q = 0; q < BN / KS; q++) {
        const int key = tid / 8 + q * KS, pos = k0 + key;
        const bool ok = pos <= s_hi;
        const size_t off = ok ? key_offset(pos) : 0;  // past s_hi: zero fill, from a valid address
#pragma unroll
        for (int h = 0; h < CK / 8; h++) {
          const int c = tid % 8 + 8 * h;
          cp_async16(Kd + (buf * BN + key) * LDD + c * EPC, kv_ptr<KV>(p.k_cache) + off + c * EPC, ok);
          cp_async16(Vd + (buf * BN + key) * LDD + c * EPC, kv_ptr<KV>(p.v_cache) + off + c * EPC, ok);
        }
      }
    } else {
      constexpr int N = BN * CK;  // chunks a tile (FP8: not always a multiple of kThreads)
#pragma unroll
      for (int it = 0; it < (N + kThreads - 1) / kThreads; it++) {
        const int i = tid + it * kThreads;
        if (N % kThreads != 0 && i >= N) break;
        const int key = i / CK, c = i % CK, pos = k0 + key;
        const bool ok = pos <= s_hi;
        const size_t off = ok ? key_offset(pos) + c * EPC : 0;
        cp_async16(Kd + (buf * BN + key) * LDD + c * EPC, kv_ptr<KV>(p.k_cache) + off, ok);
        cp_async16(Vd + (buf * BN + key) * LDD + c * EPC, kv_ptr<KV>(p.v_cache) + off, ok);
      }
    }
  };
  // FP8: staged tile buf -> Ks / Vs in bf16 (exact), 8 values a thread step; keys past s_hi
  // were zero-filled and widen to zeros.
  auto widen = [&](int buf) {
#pragma unroll
    for (int it = 0; it < BN * CH / kThreads; it++) {
      const int i = tid + it * kThreads, key = i / CH, c = i % CH;
      const int src = (buf * BN + key) * HD + c * 8;
      *reinterpret_cast<uint4 *>(Ks + key * LD + c * 8) = e4m3x8_to_bf16x8(*reinterpret_cast<const uint2 *>(K8 + src));
      *reinterpret_cast<uint4 *>(Vs + key * LD + c * 8) = e4m3x8_to_bf16x8(*reinterpret_cast<const uint2 *>(V8 + src));
    }
  };

  // Scores stay raw until the exponent: the row max of raw scores times scale_log2 (> 0:
  // paged_attention sends other scales to the simple kernel) is the max of the scaled ones.
  // With a softcap the scores are capped (scale folded in) right after Q K^T, and scale_log2
  // holds log2(e) alone; tanh is monotonic, so the max still commutes. FP8: the scores of stored
  // keys, so k_scale joins the scale (> 0: the engine checks it).
  const float qk_scale = F8 ? p.scale * p.k_scale : p.scale;
  const float scale_log2 = (p.softcap > 0.f ? 1.f : qk_scale) * kLog2e;
  float o[MR][HD / 8][4];
#pragma unroll
  for (int b = 0; b < MR; b++)
#pragma unroll
    for (int j = 0; j < HD / 8; j++) o[b][j][0] = o[b][j][1] = o[b][j][2] = o[b][j][3] = 0.f;
  float m[MR][2], l[MR][2];  // running max (scaled, log2 domain) and sum of each row
#pragma unroll
  for (int b = 0; b < MR; b++) m[b][0] = m[b][1] = -INFINITY, l[b][0] = l[b][1] = 0.f;

  if (n_tiles > 0) load_kv(s_lo, 0);
  cp_async_commit();
  for (int it = 0; it < n_tiles; it++) {
    const int buf = it & 1;
    if (it + 1 < n_tiles) load_kv(s_lo + (it + 1) * BN, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if constexpr (F8) {  // the staging of tile `it` is in: widen it for every warp
      widen(buf);
      __syncthreads();
    }
    // This warp's keys [kmin, kmax] of the tile against its rows [wq_lo, wq_hi] (warp-uniform):
    // masked for every row (skip: the state would not change), for none (no per-element mask:
    // every tile below the diagonal and inside the window), or for some.
    const int kmin = s_lo + it * BN + wk * KW, kmax = kmin + KW - 1;
    const bool skip = !live || kmin > min(wq_hi, s_hi) || (p.window > 0 && wq_lo - kmax >= p.window);
    const bool full = kmax <= s_hi && kmax <= wq_lo && (p.window == 0 || wq_hi - kmin < p.window);
    const bf16 *Kt = Ks + (F8 ? 0 : buf) * BN * LD, *Vt = Vs + (F8 ? 0 : buf) * BN * LD;

    if (!skip) {
      float s[MR][KW / 8][4];
#pragma unroll
      for (int b = 0; b < MR; b++)
#pragma unroll
        for (int j = 0; j < KW / 8; j++) s[b][j][0] = s[b][j][1] = s[b][j][2] = s[b][j][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < HD / 16; kk++) {
        uint32_t a[MR][4];
#pragma unroll
        for (int b = 0; b < MR; b++)
          ldmatrix_x4(a[b], Qs + (wr * RW + b * 16 + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int j = 0; j < KW / 8; j += 2) {
          uint32_t kf[4];
          ldmatrix_x4(kf, Kt + (wk * KW + j * 8 + (lane >> 4) * 8 + (lane & 7)) * LD + kk * 16 +
                              ((lane >> 3) & 1) * 8);
#pragma unroll
          for (int b = 0; b < MR; b++) {
            mma16816(s[b][j], a[b], kf[0], kf[1]);
            mma16816(s[b][j + 1], a[b], kf[2], kf[3]);
          }
        }
      }
      if (p.softcap > 0.f) {  // before the mask: masked scores must stay -inf
        const float mul = (F8 ? qk_scale : p.scale) / p.softcap;
#pragma unroll
        for (int b = 0; b < MR; b++)
#pragma unroll
          for (int j = 0; j < KW / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[b][j][e] = p.softcap * tanhf(s[b][j][e] * mul);
      }
      if (!full) {
#pragma unroll
        for (int b = 0; b < MR; b++) {
          // positions of this thread's two rows (-1: no such row, everything masked); derived
          // here rather than held across the loop, as registers are short at MR 2
          int qpos[2];
#pragma unroll
          for (int h = 0; h < 2; h++) {
            const int r = wrow0 + b * 16 + (lane >> 2) + 8 * h;
            qpos[h] = r < tile.row_end ? ctx + r / G : -1;
          }
#pragma unroll
          for (int j = 0; j < KW / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
              const int qp = qpos[e >> 1], kp = kmin + j * 8 + (lane & 3) * 2 + (e & 1);
              const bool ok = kp <= s_hi && kp <= qp && (p.window == 0 || qp - kp < p.window);
              if (!ok) s[b][j][e] = -INFINITY;
            }
        }
      }
      float alpha[MR][2];
      uint32_t pk[MR][KW / 8][2];  // P as bf16 pairs: the A fragments of O += P V
#pragma unroll
      for (int b = 0; b < MR; b++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
          float mx = -INFINITY;
#pragma unroll
          for (int j = 0; j < KW / 8; j++) mx = fmaxf(mx, fmaxf(s[b][j][2 * h], s[b][j][2 * h + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float m_new = fmaxf(m[b][h], mx * scale_log2);
          const float m_use = m_new == -INFINITY ? 0.f : m_new;
          alpha[b][h] = m_new == m[b][h] ? 1.f : ex2(m[b][h] - m_use);
          float rs = 0.f;
#pragma unroll
          for (int j = 0; j < KW / 8; j++) {
            const float e0 = ex2(fmaf(s[b][j][2 * h], scale_log2, -m_use));
            const float e1 = ex2(fmaf(s[b][j][2 * h + 1], scale_log2, -m_use));
            rs += e0 + e1;
            pk[b][j][h] = pack_bf16(e0, e1);
          }
          l[b][h] = l[b][h] * alpha[b][h] + rs;
          m[b][h] = m_new;
        }
      // Rescale O only when some row max of the warp moved: late in long rows most tiles skip.
      bool moved = false;
#pragma unroll
      for (int b = 0; b < MR; b++) moved |= alpha[b][0] != 1.f || alpha[b][1] != 1.f;
      if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
        for (int b = 0; b < MR; b++)
#pragma unroll
          for (int j = 0; j < HD / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) o[b][j][e] *= alpha[b][e >> 1];
      }
#pragma unroll
      for (int kk = 0; kk < KW / 16; kk++) {
        uint32_t a[MR][4];
#pragma unroll
        for (int b = 0; b < MR; b++) {
          a[b][0] = pk[b][2 * kk][0];
          a[b][1] = pk[b][2 * kk][1];
          a[b][2] = pk[b][2 * kk + 1][0];
          a[b][3] = pk[b][2 * kk + 1][1];
        }
#pragma unroll
        for (int jd = 0; jd < HD / 8; jd += 2) {
          uint32_t vf[4];
          ldmatrix_x4_trans(vf, Vt + (wk * KW + kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD +
                                    jd * 8 + (lane >> 4) * 8);
#pragma unroll
          for (int b = 0; b < MR; b++) {
            mma16816(o[b][jd], a[b], vf[0], vf[1]);
            mma16816(o[b][jd + 1], a[b], vf[2], vf[3]);
          }
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();
#pragma unroll
  for (int b = 0; b < MR; b++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      l[b][h] += __shfl_xor_sync(0xffffffffu, l[b][h], 1);
      l[b][h] += __shfl_xor_sync(0xffffffffu, l[b][h], 2);
    }

  if (WR == 4) {  // every warp owns its rows outright: write from registers
#pragma unroll
    for (int b = 0; b < MR; b++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int r = wrow0 + b * 16 + (lane >> 2) + 8 * h;
        if (r >= tile.row_end) continue;
        const float inv = l[b][h] > 0.f ? (F8 ? p.v_scale : 1.f) / l[b][h] : 0.f;  // FP8: V's scale
        bf16 *dst = p.out + (size_t)(tok0 + r / G) * p.out_stride + (kvh * G + r % G) * HD;
#pragma unroll
        for (int j = 0; j < HD / 8; j++)
          *reinterpret_cast<__nv_bfloat162 *>(dst + j * 8 + (lane & 3) * 2) =
              __floats2bfloat162_rn(o[b][j][2 * h] * inv, o[b][j][2 * h + 1] * inv);
      }
    return;
  }

  // WR == 1: four warps hold partial (m, l, o) of the same 16 rows over different keys; merge
  // them through shared memory (the K/V buffers are free now).
  __syncthreads();
  float *red_o = reinterpret_cast<float *>(Ks);  // [4][16][HD]
  float *red_m = red_o + 4 * 16 * HD;            // [4][16]
  float *red_l = red_m + 4 * 16;                 // [4][16]
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int row = (lane >> 2) + 8 * h;
#pragma unroll
    for (int j = 0; j < HD / 8; j++) {
      red_o[(wk * 16 + row) * HD + j * 8 + (lane & 3) * 2] = o[0][j][2 * h];
      red_o[(wk * 16 + row) * HD + j * 8 + (lane & 3) * 2 + 1] = o[0][j][2 * h + 1];
    }
    if ((lane & 3) == 0) red_m[wk * 16 + row] = m[0][h], red_l[wk * 16 + row] = l[0][h];
  }
  __syncthreads();
  const int rows = tile.row_end - tile.row_begin;
  for (int i = tid; i < rows * HD; i += kThreads) {
    const int row = i / HD, d = i % HD, r = tile.row_begin + row;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < 4; w++) M = fmaxf(M, red_m[w * 16 + row]);
    float L = 0.f, O = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < 4; w++) {
        const float f = exp2f(red_m[w * 16 + row] - M);
        L += red_l[w * 16 + row] * f;
        O += red_o[(w * 16 + row) * HD + d] * f;
      }
    }
    const int t = tok0 + r / G, head = kvh * G + r % G;
    const float val = L > 0.f ? (F8 ? O / L * p.v_scale : O / L) : 0.f;
    if (splits == 1) {
      p.out[(size_t)t * p.out_stride + head * HD + d] = to_bf(val);
    } else {
      const size_t idx = ((size_t)split * p.num_tokens + t) * p.num_heads + head;
      p.part_o[idx * HD + d] = val;
      if (d == 0) p.part_lse[idx] = L > 0.f ? M + log2f(L) : -INFINITY;
    }
  }
  if (WR == 1 && splits > 1 && p.split_done && last_split(p, tile_id, kvh)) merge_splits(p, tile, kvh);
}

// Merges the key splits of narrow tiles when there are no split counters. grid (num_narrow,
// num_kv_heads).
__global__ void attn_combine_kernel(AttnArgs p) {
  const AttnTile tile = p.narrow[blockIdx.x];
  pdl_wait();
  merge_splits(p, tile, blockIdx.y);
}

// Any head_dim (multiple of 8 not needed): one warp per (token, head), one key at a time.
// The correct-first fallback for head sizes the tensor-core kernel is not built for.
template <typename KV>
__global__ void attn_simple_kernel(AttnArgs p) {
  constexpr bool F8 = kv_is_fp8<KV>();
  const int warps = blockDim.x / 32;
  const int item = blockIdx.x * warps + threadIdx.x / 32, lane = threadIdx.x & 31;
  if (item >= p.num_tokens * p.num_heads) return;
  const int t = item / p.num_heads, head = item % p.num_heads, HD = p.head_dim;
  const int seq = p.token_seq[t], G = p.num_heads / p.num_kv_heads, kvh = head / G;
  const int pos = p.context_lens[seq] + (t - p.cu_seqlens[seq]);
  const int lo = p.window > 0 ? max(0, pos - p.window + 1) : 0;
  const int *btab = p.block_indices + p.block_indptr[seq];
  const bf16 *q = p.q + (size_t)t * p.q_stride + head * HD;
  float acc[8];  // dims lane + 32 * i, head_dim <= 256
  for (int i = 0; i < 8; i++) acc[i] = 0.f;
  float m = -INFINITY, l = 0.f;
  for (int j = lo; j <= pos; j++) {
    const size_t off =
        (((size_t)btab[j / p.block_size] * p.num_kv_heads + kvh) * p.block_size + j % p.block_size) * HD;
    float dot = 0.f;
    for (int d = lane; d < HD; d += 32) dot += to_f(q[d]) * kv_to_f(kv_ptr<KV>(p.k_cache)[off + d]);
    for (int s = 16; s > 0; s >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, s);
    float sc = dot * (F8 ? p.scale * p.k_scale : p.scale);
    if (p.softcap > 0.f) sc = p.softcap * tanhf(sc / p.softcap);
    const float m_new = fmaxf(m, sc);
    const float alpha = __expf(m - m_new), pj = __expf(sc - m_new);
    l = l * alpha + pj;
    for (int i = 0; i < 8 && lane + 32 * i < HD; i++)
      acc[i] = acc[i] * alpha + pj * kv_to_f(kv_ptr<KV>(p.v_cache)[off + lane + 32 * i]);
    m = m_new;
  }
  bf16 *dst = p.out + (size_t)t * p.out_stride + head * HD;
  for (int i = 0; i < 8 && lane + 32 * i < HD; i++)
    dst[lane + 32 * i] = to_bf(l > 0 ? (F8 ? acc[i] / l * p.v_scale : acc[i] / l) : 0.f);
}

// Head sizes whose wide tiles run 128 rows (MR 2); the others run 64-row CTAs (MR 1), two per
// 128-row host tile. HD 256 at MR 2 would need 256 accumulator registers a thread for O alone.
// ptxas -v (sm_90a, MR 2, BN 64): HD <= 80 no spills, HD 96 2 words, HD 128 255 registers and
// ~26 words (scalars, reloaded around the barriers: ~25 L1 accesses a key tile against 80
// ldmatrix.x4). FASTGEN_ATTN_BN=32 runs HD 128 with 32-key tiles instead: no spills, but Q
// fragments are read twice as often and the per-tile softmax work doubles. For A/B timing.
constexpr bool wide_mr2(int hd) { return hd <= 128; }

int attn_kv_tile_128() {
  static const int bn = fg_knob_int(FG_KNOB_ATTN_BN) == 32 ? 32 : 64;
  return bn;
}

// grid (num_ctas, num_kv_heads)
template <typename KV, int HD, int WR, int MR, int BN = 64>
int launch(const AttnArgs &a, int num_ctas, int pieces, cudaStream_t s, char *err) {
  // Division by block_size as multiply-high, add, shift (Granlund-Montgomery, round-up multiplier
  // m = 2^32 (2^k - d) / d + 1 with 2^k >= d; exact for dividends below 2^31).
  KernelCfg cfg = {pieces, 0u, 0, attn_pdl_mode() == 2};
  while (((int64_t)1 << cfg.bs_shift) < a.block_size) cfg.bs_shift++;
  cfg.bs_mul = (unsigned)((((uint64_t)1 << 32) * (((uint64_t)1 << cfg.bs_shift) - a.block_size)) / a.block_size + 1);
  constexpr int bytes = smem_bytes<HD, WR, MR, BN, KV>();
  // Kernel attributes are per device (tensor-parallel ranks each set theirs): one bit per device,
  // per instantiation; a race only repeats the same call.
  static unsigned configured = 0;
  int dev = 0;
  FGCU_TRY(cudaGetDevice(&dev));
  const unsigned bit = 1u << (dev & 31);
  if (!(__atomic_load_n(&configured, __ATOMIC_ACQUIRE) & bit)) {
    FGCU_TRY(cudaFuncSetAttribute(attn_kernel<HD, WR, MR, BN, KV>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    __atomic_fetch_or(&configured, bit, __ATOMIC_RELEASE);
  }
  dim3 grid(num_ctas, a.num_kv_heads);
  if (attn_pdl_mode() > 0) launch_k(attn_kernel<HD, WR, MR, BN, KV>, grid, dim3(kThreads), bytes, s, a, cfg);
  else attn_kernel<HD, WR, MR, BN, KV><<<grid, kThreads, bytes, s>>>(a, cfg);
  FGCU_LAUNCHED("attn_kernel");
  return 0;
}

// The host cut wide tiles of attn_wide_rows() rows (attn_make_tiles): run them whole at MR 2,
// or as 64-row pieces.
template <typename KV, int HD>
int launch_wide(const AttnArgs &a, cudaStream_t s, char *err) {
  if (attn_hopper_takes(a)) return attn_hopper_wide(a, attn_pdl_mode(), s, err);  // sm_90: wgmma
  const int rows = attn_wide_rows();
  if constexpr (wide_mr2(HD)) {
    if (rows == 128) {
      if constexpr (HD == 128) {
        if (attn_kv_tile_128() == 32) return launch<KV, HD, 4, 2, 32>(a, a.num_wide, 1, s, err);
      }
      return launch<KV, HD, 4, 2>(a, a.num_wide, 1, s, err);
    }
  }
  return launch<KV, HD, 4, 1>(a, a.num_wide * (rows / 64), rows / 64, s, err);
}

template <typename KV, int HD>
int launch_both(const AttnArgs &a, cudaStream_t s, char *err) {
  if (a.num_wide > 0) FGCU_CHECK((launch_wide<KV, HD>(a, s, err)));
  if (a.num_narrow > 0) {
    if (kv_is_fp8<KV>() && attn_fp8_direct_takes(a)) FGCU_CHECK(attn_fp8_direct_narrow(a, attn_pdl_mode(), s, err));
    else FGCU_CHECK((launch<KV, HD, 1, 1>(a, a.num_narrow * a.splits, 1, s, err)));
    if (a.splits > 1 && !a.split_done) {
      if (attn_pdl_mode() > 0) launch_k(attn_combine_kernel, dim3(a.num_narrow, a.num_kv_heads), dim3(kThreads), 0, s, a);
      else attn_combine_kernel<<<dim3(a.num_narrow, a.num_kv_heads), kThreads, 0, s>>>(a);
      FGCU_LAUNCHED("attn_combine_kernel");
    }
  }
  return 0;
}

}  // namespace

int attn_wide_rows() {
  static const int rows = fg_knob_int(FG_KNOB_ATTN_BM) == 64 ? 64 : 128;
  return rows;
}

int attn_num_tiles_bound(int num_tokens, int num_seqs, int group) {
  const int64_t rows = attn_wide_rows();
  return (int)(((int64_t)num_tokens * group + rows - 1) / rows) + num_seqs;
}

void attn_make_tiles(int num_seqs, const int *cu_seqlens, int group, AttnTile *wide, int *num_wide,
                     AttnTile *narrow, int *num_narrow) {
  const int step = attn_wide_rows();
  int nw = 0, nn = 0;
  for (int s = 0; s < num_seqs; s++) {
    const int rows = (cu_seqlens[s + 1] - cu_seqlens[s]) * group;
    if (rows <= 16) {
      narrow[nn++] = {s, 0, rows};
      continue;
    }
    for (int r = 0; r < rows; r += step) wide[nw++] = {s, r, r + step < rows ? r + step : rows};
  }
  *num_wide = nw;
  *num_narrow = nn;
}

bool attn_merge_in_kernel() {
  static const bool v = fg_knob_int(FG_KNOB_ATTN_MERGE_IN_KERNEL) != 0;
  return v;
}

int attn_choose_splits(int num_narrow, int num_kv_heads, int max_context, int num_sms) {
  static const int forced = fg_knob_int(FG_KNOB_ATTN_SPLITS);  // A/B runs: this many, at least 1
  if (forced >= 0) return forced > 1 ? forced : 1;
  const int ctas = num_narrow * num_kv_heads;
  if (ctas == 0 || ctas >= num_sms) return 1;
  // at most two full waves of CTAs (rounding up to a third, partial wave measured slower: 8 seqs x
  // 8 KV heads at 8192 keys took 90 us at 5 splits, 85 us at 4; bench/results/kernels-ab-h200/)
  int splits = 2 * num_sms / ctas;
  // At least 128 keys a split when the last CTA merges (no combine kernel to pay for), else 256:
  // H100 2026-12-07, 7B shape, decode b=1 at ctx 512 (bench/results/device-wave15-h100.md):
  // 4 splits merged in the kernel 5.316 / 3.266 ms (bf16 / FP8) against 2 splits and the combine
  // kernel 5.368 / 3.311; 8 splits 5.331 / 3.275, 16 splits 5.46 / 3.40; at ctx 128 one split.
  const int by_len = max_context / (attn_merge_in_kernel() ? 128 : 256);
  if (splits > by_len) splits = by_len;
  if (splits > 16) splits = 16;
  return splits < 1 ? 1 : splits;
}

namespace {

bool force_simple() {
  static const bool v = strcmp(fg_knob_str(FG_KNOB_ATTN), "simple") == 0;
  return v;
}

// The tensor-core kernels of head size HD for the cache's element type.
template <int HD>
int launch_kv(const AttnArgs &a, cudaStream_t s, char *err) {
  return a.kv_fp8 ? launch_both<e4m3, HD>(a, s, err) : launch_both<bf16, HD>(a, s, err);
}

}  // namespace

int paged_attention(const AttnArgs &a, cudaStream_t s, char *err) {
  if (a.num_tokens == 0) return 0;
  if (!force_simple() && a.scale > 0.f) switch (a.head_dim) {
    case 16: return launch_kv<16>(a, s, err);
    case 32: return launch_kv<32>(a, s, err);
    case 64: return launch_kv<64>(a, s, err);
    case 80: return launch_kv<80>(a, s, err);
    case 96: return launch_kv<96>(a, s, err);
    case 128: return launch_kv<128>(a, s, err);
    case 256: return launch_kv<256>(a, s, err);
    default: break;
  }
  if (a.head_dim > 256) {
    snprintf(err, 512, "paged_attention: head_dim %d > 256 is not supported", a.head_dim);
    return FG_ERR_UNSUPPORTED;
  }
  const int items = a.num_tokens * a.num_heads;
  if (a.kv_fp8) attn_simple_kernel<e4m3><<<ceil_div(items, 4), 128, 0, s>>>(a);
  else attn_simple_kernel<bf16><<<ceil_div(items, 4), 128, 0, s>>>(a);
  FGCU_LAUNCHED("attn_simple_kernel");
  return 0;
}

}  // namespace fgcu
