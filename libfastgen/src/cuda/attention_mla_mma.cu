// Paged latent attention on the tensor cores (see attention_mla_mma.cuh; shapes and masks as in
// attention_mla.cuh). One CTA of 8 warps per (query tile, head group, key split):
//
//   rows   BM = 16 RB query rows: row r is head h0 + r % HG of token t0 + r / HG (TQ tokens of one
//          sequence, HG heads: HG = min(heads, BM), TQ = BM / HG). RB 1 (16 rows) for decode-sized
//          steps, RB 4 (64 rows: 4 tokens of V2-Lite's 16 heads, half of V2's 128) for prompts.
//   keys   tiles of 32 cache rows, cp.async into padded shared memory, double buffered (FP8: E4M3
//          staged, double buffered, then widened into one bf16 tile, as attention.cu does)
//   per tile:
//     1  S = Q K^T   warp (row pair / row block, 16 keys, 1/DS of the width): mma.sync over DP =
//                    latent + rope rounded up to 16 (zero padded); fp32 partial sums -> Ss
//     2  softmax     TPR threads a row: sum the DS partials, scale / softcap, mask (causal,
//                    window, split end), running max and sum (log2 domain), P -> Ps in bf16, the
//                    row's rescale factor -> alpha_s
//     3  O += P V    warp w owns output columns 16 (w + 8 i), i < NC, of every row: O *= alpha,
//                    then mma.sync with P (Ps) against the tile's latent columns (ldmatrix.trans)
//   end: O / l -> out (bf16), or per split O / l and the natural log-sum-exp -> part_o, part_lse
//   (attention_mla.cu's combine kernel merges them).
//
// Why the row owners and the shared S, P: the 512 latent columns of O do not fit one warp's
// registers (16 rows x 512 fp32 = 256 a lane), so the warps split O's columns, and every warp
// needs all of P; FlashMLA splits the same way (two warpgroups, 256 columns each).
//
// Napkin math (V2-Lite: 16 heads, D 576, latent 512; H100 132 SMs): a 64-row tile of 32 keys is
// 64 x 32 x (576 + 512) x 2 = 4.5 MFLOP in 1088 mma.sync a CTA, and ldmatrix reads ~300 KB of
// shared memory (phase 1: 384 B an mma), ~2.4k clocks at 128 B a clock: shared memory, not the
// tensor cores, bounds it; a causal 2048-token prefill (16k tile steps) is then ~0.25 ms a layer
// against the fp32 kernel's 5.3 ms. Decode reads 1152 bytes a key once: B 32 x C 4096 is 151 MB,
// ~45 us at HBM speed; two 16-row CTAs an SM keep 72 KB of key tiles in flight. (Estimates;
// bench/gpu/mla.ts measures both kernels.)
#include "cuda/attention_mla_mma.cuh"

#include "cuda/cp_async.cuh"
#include "cuda/kv_fp8.cuh"
#include "cuda/ldmatrix.cuh"

namespace fgcu {
namespace {

constexpr int kWarps = 8, kThreads = 32 * kWarps;
constexpr int kKeys = 32;              // keys a tile
constexpr int kMaxD = 512 + 256;       // mla_attention_check's latent and rope limits
constexpr int kLdS = kKeys + 4;        // Ss row stride (fp32)
constexpr int kLdP = kKeys + 8;        // Ps row stride (bf16): 80 bytes, an odd multiple of 16
constexpr float kLn2 = 0.69314718055994531f;
static_assert(kKeys % 16 == 0, "key tiles are whole k16 steps of O += P V");

// The CTA's rows: HG heads of TQ consecutive tokens of one sequence; groups head groups a token.
struct TileCfg {
  int hg, tq, groups;
};

constexpr int round16(int x) { return (x + 15) & ~15; }

// Shared memory of one CTA (byte offsets, each a multiple of 16):
//   Qs  bf16 [BM][LDQ]         LDQ = DP + 8: rows 16-byte aligned, an odd multiple of 16 bytes
//                              apart, so the 8 rows of an ldmatrix hit 8 different bank groups
//   Ks  bf16 [KB][kKeys][LDQ]  KB = 2 (bf16 cache: cp.async's double buffer), 1 (FP8: widened)
//   K8  e4m3 [2][kKeys][D]     FP8 only: the staged E4M3 rows
//   Ss  fp32 [DS][BM][kLdS]    phase 1's partial scores
//   Ps  bf16 [BM][kLdP]        P
//   alpha_s, l_s, m_s  fp32 [BM]
struct Layout {
  size_t q, k, k8, s, p, stats, bytes;
};
__host__ __device__ inline Layout layout(int RB, int DS, int D, bool f8) {
  const int BM = 16 * RB, LDQ = round16(D) + 8;
  Layout l;
  l.q = 0;
  l.k = l.q + (size_t)BM * LDQ * 2;
  l.k8 = l.k + (size_t)(f8 ? 1 : 2) * kKeys * LDQ * 2;
  l.s = l.k8 + (f8 ? (size_t)2 * kKeys * D : 0);
  l.p = l.s + (size_t)DS * BM * kLdS * 4;
  l.stats = l.p + (size_t)BM * kLdP * 2;
  l.bytes = l.stats + (size_t)3 * BM * 4;
  return l;
}

// Phase 1's split of the S tile [BM rows x kKeys keys] over the 8 warps: R1 row blocks and 16
// keys a warp, DS warps on strided k16 steps of the same block (their sums meet in phase 2).
template <int RB>
struct Split {
  static constexpr int R1 = RB >= 2 ? 2 : 1, RP = RB / R1, KG = kKeys / 16, DS = kWarps / (RP * KG);
  static_assert(RB % R1 == 0 && DS >= 1 && RP * KG * DS == kWarps, "phase-1 units must cover the warps once");
};

// 8 cache elements: 16 bytes of bf16 (cache row offsets are multiples of 16 bytes: D % 8 == 0),
// 8 of E4M3.
__device__ __forceinline__ void cp_async_row8(bf16 *dst, const bf16 *src, bool ok) { cp_async16(dst, src, ok); }
__device__ __forceinline__ void cp_async_row8(e4m3 *dst, const e4m3 *src, bool ok) { cp_async8(dst, src, ok); }

// RB: 16-row blocks of the CTA (1 or 4); NC: 16-column chunks of O a warp (1, 2 or 4: latent up
// to 128, 256, 512); KV: the cache's element.
template <int RB, int NC, typename KV>
__global__ void __launch_bounds__(kThreads, RB == 1 ? 2 : 1) mla_mma_kernel(MlaAttnArgs p, TileCfg cfg) {
  using SP = Split<RB>;
  constexpr bool F8 = kv_is_fp8<KV>();
  constexpr int BM = 16 * RB, R1 = SP::R1, KG = SP::KG, DS = SP::DS;
  constexpr int TPR = kThreads / BM, KPT = kKeys / TPR;  // softmax: threads a row, keys a thread
  static_assert(TPR * BM == kThreads && 32 % TPR == 0 && KPT * TPR == kKeys, "a row's threads share a warp");
  const int L = p.latent, D = p.latent + p.rope, DP = round16(D), LDQ = DP + 8, CH = D / 8;
  const int KK = DP / 16, LP = round16(L);
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const Layout lay = layout(RB, DS, D, F8);
  bf16 *Qs = reinterpret_cast<bf16 *>(smem_raw + lay.q);
  bf16 *Ks = reinterpret_cast<bf16 *>(smem_raw + lay.k);
  e4m3 *K8 = reinterpret_cast<e4m3 *>(smem_raw + lay.k8);
  float *Ss = reinterpret_cast<float *>(smem_raw + lay.s);
  bf16 *Ps = reinterpret_cast<bf16 *>(smem_raw + lay.p);
  float *alpha_s = reinterpret_cast<float *>(smem_raw + lay.stats), *l_s = alpha_s + BM, *m_s = l_s + BM;
  // where cp.async puts a tile: bf16 straight into Ks, FP8 into the staging K8
  KV *const Kd = F8 ? reinterpret_cast<KV *>(K8) : reinterpret_cast<KV *>(Ks);
  const int LDD = F8 ? D : LDQ;

  // The tile: the last tokens first (they see the most keys). A CTA whose token does not start a
  // tile of TQ (counted from the sequence's first token of the step) has nothing to do.
  const int t0 = p.num_tokens - 1 - (int)blockIdx.x / cfg.groups, g = (int)blockIdx.x % cfg.groups;
  const int split = blockIdx.y, seq = p.token_seq[t0], rel = t0 - p.cu_seqlens[seq];
  if (rel % cfg.tq != 0) return;
  const int nt = min(cfg.tq, p.cu_seqlens[seq + 1] - t0), h0 = g * cfg.hg;
  auto row_ok = [&](int r) { return r / cfg.hg < nt && h0 + r % cfg.hg < p.num_heads; };
  const int pos0 = p.context_lens[seq] + rel, pos_last = pos0 + nt - 1;
  const int *btab = p.block_indices + p.block_indptr[seq];
  const MlaKeys keys = mla_split_keys(p, pos0, pos_last, split, kKeys);
  const int s_lo = keys.s_lo, s_hi = keys.s_hi, n_tiles = keys.n_tiles;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  // Keys k0 .. k0 + 31 into buffer buf, 8 elements a thread step; keys past s_hi zero-filled.
  auto load_tile = [&](int k0, int buf) {
    for (int i = tid; i < kKeys * CH; i += kThreads) {
      const int key = i / CH, c = i % CH, kp = k0 + key;
      const bool ok = kp <= s_hi;
      const KV *src = kv_ptr<KV>(p.cache);
      if (ok) src += ((size_t)btab[kp / p.block_size] * p.block_size + kp % p.block_size) * D + c * 8;
      cp_async_row8(Kd + (size_t)(buf * kKeys + key) * LDD + c * 8, src, ok);
    }
  };
  if (n_tiles > 0) load_tile(s_lo, 0);
  cp_async_commit();
  // Q rows (zeros for rows past the tile and for the pad columns D .. DP), and the K tiles' pad
  // columns, which no copy writes: zeros, so that the padded k16 step adds 0 x 0.
  for (int i = tid; i < BM * (DP / 8); i += kThreads) {
    const int r = i / (DP / 8), c = i % (DP / 8);
    uint4 v = make_uint4(0, 0, 0, 0);
    if (c < CH && row_ok(r))
      v = *reinterpret_cast<const uint4 *>(p.q + ((size_t)(t0 + r / cfg.hg) * p.num_heads + h0 + r % cfg.hg) * D + c * 8);
    *reinterpret_cast<uint4 *>(Qs + (size_t)r * LDQ + c * 8) = v;
  }
  if (DP > D)  // D % 16 == 8: one 16-byte pad chunk a row
    for (int i = tid; i < (F8 ? 1 : 2) * kKeys; i += kThreads)
      *reinterpret_cast<uint4 *>(Ks + (size_t)i * LDQ + D) = make_uint4(0, 0, 0, 0);

  // Softmax state, held by the TPR threads of row srow (the same values in each).
  const int srow = tid / TPR, sub = tid % TPR;
  const int qpos = row_ok(srow) ? pos0 + srow / cfg.hg : -1;  // -1: no such row, every key masked
  const float qk_scale = F8 ? p.scale * p.kv_scale : p.scale;  // FP8: scores of the stored rows
  float m_run = -INFINITY, l_run = 0.f;                         // log2 domain

  // O fragments (mma m16n8 C layout): o[b][i][n][e] is row 16 b + lane / 4 + 8 (e / 2), column
  // 16 (warp + 8 i) + 8 n + 2 (lane % 4) + e % 2.
  float o[RB][NC][2][4];
#pragma unroll
  for (int b = 0; b < RB; b++)
#pragma unroll
    for (int i = 0; i < NC; i++)
#pragma unroll
      for (int n = 0; n < 2; n++) o[b][i][n][0] = o[b][i][n][1] = o[b][i][n][2] = o[b][i][n][3] = 0.f;

  for (int it = 0; it < n_tiles; it++) {
    const int buf = it & 1, k0 = s_lo + it * kKeys;
    if (it + 1 < n_tiles) load_tile(k0 + kKeys, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();  // tile `it` (and, the first time, Qs and the pads) visible to every warp
    if constexpr (F8) {  // widen the staged E4M3 tile into Ks (exact); zero-filled keys stay 0
      for (int i = tid; i < kKeys * CH; i += kThreads) {
        const int key = i / CH, c = i % CH;
        *reinterpret_cast<uint4 *>(Ks + (size_t)key * LDQ + c * 8) =
            e4m3x8_to_bf16x8(*reinterpret_cast<const uint2 *>(K8 + (size_t)(buf * kKeys + key) * D + c * 8));
      }
      __syncthreads();
    }
    const bf16 *Kt = Ks + (size_t)(F8 ? 0 : buf) * kKeys * LDQ;

    // 1. S partials. Unit of warp w: keys 16 kg .. 16 kg + 15, row blocks R1 rp .. R1 rp + R1 - 1,
    //    k16 steps ds, ds + DS, ... ldmatrix lanes: Q rows 16 b + lane % 16, columns 8 (lane / 16)
    //    of the step (A: a0..a3 = rows 0-7 / 8-15 x k 0-7 / 8-15); K rows kg 16 + 8 (lane / 16) +
    //    lane % 8, columns 8 ((lane / 8) % 2) (B of keys 0-7 in kf0, kf1, of keys 8-15 in kf2, kf3).
    {
      const int kg = warp % KG, rp = (warp / KG) % SP::RP, ds = warp / (KG * SP::RP);
      float s[R1][2][4];
#pragma unroll
      for (int b = 0; b < R1; b++)
#pragma unroll
        for (int n = 0; n < 2; n++) s[b][n][0] = s[b][n][1] = s[b][n][2] = s[b][n][3] = 0.f;
      for (int kk = ds; kk < KK; kk += DS) {
        uint32_t kf[4];
        ldmatrix_x4(kf, Kt + (size_t)(kg * 16 + (lane >> 4) * 8 + (lane & 7)) * LDQ + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int b = 0; b < R1; b++) {
          uint32_t a[4];
          ldmatrix_x4(a, Qs + (size_t)((rp * R1 + b) * 16 + (lane & 15)) * LDQ + kk * 16 + (lane >> 4) * 8);
          mma16816(s[b][0], a, kf[0], kf[1]);
          mma16816(s[b][1], a, kf[2], kf[3]);
        }
      }
      float *S = Ss + (size_t)ds * BM * kLdS;
#pragma unroll
      for (int b = 0; b < R1; b++)
#pragma unroll
        for (int n = 0; n < 2; n++)
#pragma unroll
          for (int h = 0; h < 2; h++) {
            const int r = (rp * R1 + b) * 16 + (lane >> 2) + 8 * h, key = kg * 16 + n * 8 + (lane & 3) * 2;
            *reinterpret_cast<float2 *>(S + r * kLdS + key) = make_float2(s[b][n][2 * h], s[b][n][2 * h + 1]);
          }
    }
    __syncthreads();

    // 2. Softmax of row srow over keys sub + TPR j (its TPR threads are consecutive lanes).
    {
      float x[KPT], mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < KPT; j++) {
        const int key = sub + TPR * j, kp = k0 + key;
        float v = 0.f;
#pragma unroll
        for (int d = 0; d < DS; d++) v += Ss[((size_t)d * BM + srow) * kLdS + key];
        v *= qk_scale;
        if (p.softcap > 0.f) v = p.softcap * tanhf(v / p.softcap);
        const bool ok = kp <= s_hi && kp <= qpos && (p.window == 0 || qpos - kp < p.window);
        x[j] = ok ? v * kLog2e : -INFINITY;
        mx = fmaxf(mx, x[j]);
      }
#pragma unroll
      for (int off = TPR / 2; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(m_run, mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // no key yet: every weight 0, not NaN
      const float alpha = ex2(m_run - m_use);
      float rs = 0.f;
#pragma unroll
      for (int j = 0; j < KPT; j++) {
        const float e = ex2(x[j] - m_use);
        rs += e;
        Ps[srow * kLdP + sub + TPR * j] = to_bf(e);
      }
#pragma unroll
      for (int off = TPR / 2; off > 0; off >>= 1) rs += __shfl_xor_sync(0xffffffffu, rs, off);
      l_run = l_run * alpha + rs;
      m_run = m_new;
      if (sub == 0) alpha_s[srow] = alpha;
    }
    __syncthreads();

    // 3. O = O alpha + P V. A = P rows 16 b + lane % 16, keys 16 kk + 8 (lane / 16); B = V through
    //    ldmatrix.trans: lanes 8q .. 8q + 7 name key rows 16 kk + 8 (q % 2) + lane % 8 at columns
    //    16 c + 8 (q / 2), so vf0, vf1 are columns 0-7 of the chunk and vf2, vf3 columns 8-15.
#pragma unroll
    for (int b = 0; b < RB; b++) {
      const float a0 = alpha_s[b * 16 + (lane >> 2)], a1 = alpha_s[b * 16 + (lane >> 2) + 8];
#pragma unroll
      for (int i = 0; i < NC; i++)
#pragma unroll
        for (int n = 0; n < 2; n++) o[b][i][n][0] *= a0, o[b][i][n][1] *= a0, o[b][i][n][2] *= a1, o[b][i][n][3] *= a1;
    }
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; kk++) {
      uint32_t a[RB][4];
#pragma unroll
      for (int b = 0; b < RB; b++) ldmatrix_x4(a[b], Ps + (b * 16 + (lane & 15)) * kLdP + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int i = 0; i < NC; i++) {
        const int c = warp + kWarps * i;
        if (c * 16 >= LP) break;  // warp-uniform
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, Kt + (size_t)(kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LDQ + c * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int b = 0; b < RB; b++) {
          mma16816(o[b][i][0], a[b], vf[0], vf[1]);
          mma16816(o[b][i][1], a[b], vf[2], vf[3]);
        }
      }
    }
    __syncthreads();  // everyone is done with Kt, Ss and Ps before the next tile refills them
  }
  cp_async_wait<0>();

  const bool parts = p.splits > 1;
  if (sub == 0) {
    l_s[srow] = l_run, m_s[srow] = m_run;
    if (parts && qpos >= 0) {
      const size_t idx = ((size_t)split * p.num_tokens + t0 + srow / cfg.hg) * p.num_heads + h0 + srow % cfg.hg;
      p.part_lse[idx] = l_run > 0.f ? m_run * kLn2 + __logf(l_run) : -INFINITY;  // natural log, as combine reads it
    }
  }
  __syncthreads();
#pragma unroll
  for (int b = 0; b < RB; b++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int r = b * 16 + (lane >> 2) + 8 * h;
      if (!row_ok(r)) continue;
      const size_t th = (size_t)(t0 + r / cfg.hg) * p.num_heads + h0 + r % cfg.hg;  // token x heads + head
      const float inv = l_s[r] > 0.f ? (F8 ? p.kv_scale : 1.f) / l_s[r] : 0.f;      // FP8: the values' scale
#pragma unroll
      for (int i = 0; i < NC; i++)
#pragma unroll
        for (int n = 0; n < 2; n++) {
          const int col = (warp + kWarps * i) * 16 + n * 8 + (lane & 3) * 2;  // even; L even: col + 1 < L too
          if (col >= L) continue;
          const float v0 = o[b][i][n][2 * h] * inv, v1 = o[b][i][n][2 * h + 1] * inv;
          if (!parts) {
            *reinterpret_cast<__nv_bfloat162 *>(p.out + th * L + col) = __floats2bfloat162_rn(v0, v1);
          } else {
            float *dst = p.part_o + ((size_t)split * p.num_tokens * p.num_heads + th) * L + col;
            dst[0] = v0, dst[1] = v1;
          }
        }
    }
}

// FASTGEN_MLA_KERNEL (default mma): 0 the fp32 kernel, 1 the tensor-core one choosing its rows, 16 or 64 forced.
int mma_mode() {
  static const int mode = [] {
    const char *k = fg_knob_str(FG_KNOB_MLA_KERNEL);
    if (strcmp(k, "mma") == 0) return 1;
    if (strcmp(k, "mma16") == 0) return 16;
    if (strcmp(k, "mma64") == 0) return 64;
    return 0;
  }();
  return mode;
}

template <int RB, int NC, typename KV>
int launch(const MlaAttnArgs &a, const TileCfg &cfg, cudaStream_t s, char *err) {
  const int D = a.latent + a.rope;
  const size_t bytes = layout(RB, Split<RB>::DS, D, kv_is_fp8<KV>()).bytes;
  // Per device and instantiation, set once to the most any width can ask for (attention_mla.cu's
  // reason: a smaller first call must not cap a larger later one).
  static unsigned configured = 0;
  int dev = 0, optin = 0;
  FGCU_TRY(cudaGetDevice(&dev));
  FGCU_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  const unsigned bit = 1u << (dev & 31);
  if (!(__atomic_load_n(&configured, __ATOMIC_ACQUIRE) & bit)) {
    const size_t most = layout(RB, Split<RB>::DS, kMaxD, kv_is_fp8<KV>()).bytes;
    const int ceiling = (int)(most < (size_t)optin ? most : (size_t)optin);
    FGCU_TRY(cudaFuncSetAttribute(mla_mma_kernel<RB, NC, KV>, cudaFuncAttributeMaxDynamicSharedMemorySize, ceiling));
    __atomic_fetch_or(&configured, bit, __ATOMIC_RELEASE);
  }
  if (bytes > (size_t)optin) {
    snprintf(err, 512, "mla attention (mma): %zu bytes of shared memory for %d rows of width %d exceed the GPU's %d",
             bytes, 16 * RB, D, optin);
    return FG_ERR_UNSUPPORTED;
  }
  const dim3 grid(a.num_tokens * cfg.groups, a.splits);
  mla_mma_kernel<RB, NC, KV><<<grid, kThreads, bytes, s>>>(a, cfg);
  FGCU_LAUNCHED("mla_mma_kernel");
  return 0;
}

template <int RB, typename KV>
int launch_nc(const MlaAttnArgs &a, const TileCfg &cfg, cudaStream_t s, char *err) {
  const int per_warp = (round16(a.latent) / 16 + kWarps - 1) / kWarps;  // O's 16-column chunks a warp
  if (per_warp <= 1) return launch<RB, 1, KV>(a, cfg, s, err);
  if (per_warp <= 2) return launch<RB, 2, KV>(a, cfg, s, err);
  return launch<RB, 4, KV>(a, cfg, s, err);
}

template <int RB>
int launch_kv(const MlaAttnArgs &a, cudaStream_t s, char *err) {
  TileCfg cfg;
  cfg.hg = a.num_heads < 16 * RB ? a.num_heads : 16 * RB;
  cfg.tq = 16 * RB / cfg.hg;
  cfg.groups = (a.num_heads + cfg.hg - 1) / cfg.hg;
  return a.kv_fp8 ? launch_nc<RB, e4m3>(a, cfg, s, err) : launch_nc<RB, bf16>(a, cfg, s, err);
}

}  // namespace

bool mla_mma_takes() { return mma_mode() != 0; }

int mla_attention_mma(const MlaAttnArgs &a, cudaStream_t s, char *err) {
  int rows = mma_mode();
  if (rows != 16 && rows != 64) {
    // 64-row tiles (a quarter of the shared-memory reads a FLOP of phase 3, one CTA an SM) where
    // they still make half a wave; 16 rows (two CTAs an SM) for decode-sized steps. The rule is
    // not measured against the forced choices yet (FASTGEN_MLA_KERNEL=mma16 / mma64 force
    // either; bench/gpu/mla.ts --kernels fma,mma16,mma64 times them).
    int dev = 0, sms = 0;
    FGCU_TRY(cudaGetDevice(&dev));
    FGCU_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    rows = (int64_t)a.num_tokens * a.num_heads >= (int64_t)32 * sms ? 64 : 16;
  }
  return rows == 64 ? launch_kv<4>(a, s, err) : launch_kv<1>(a, s, err);
}

}  // namespace fgcu
