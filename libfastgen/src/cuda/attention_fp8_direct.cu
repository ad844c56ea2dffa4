// Narrow-tile (decode) attention over an FP8 KV cache, K/V loaded into registers (see the header).
//
// Why: the staged kernel (attention.cu) cp.asyncs each E4M3 tile into shared memory, widens it to
// a bf16 tile, and all four warps wait on barriers around both passes; with half the bytes a
// stage its FP8 reads reached 32-45% of the copy bandwidth on an H200 against 62-85% for bf16
// (bench/results/device-wave9b-h200.md). Here each warp owns whole 16-key chunks (warp w:
// chunks w, w + 4, ...), loads them with plain vector loads one chunk ahead (the next chunk's
// bytes are in flight while this one computes), and widens in registers: no shared K/V, no
// barrier in the key loop. The four warps' partial (m, l, o) merge once at the end.
//
// Fragment layouts (mma.m16n8k16, thread lane: c = lane / 4, q = lane % 4). A dot product and
// the sum over keys do not care in which order their terms come, so the k index of each MMA
// is mapped to whatever element the loads bring:
//   S = Q K^T, k-step kk (HD / 16 of them), MMA k index 2q + e -> dim q * HD/4 + 4kk + 2e,
//              8 + 2q + e -> dim q * HD/4 + 4kk + 2e + 1: thread (c, q) needs key c (and 8 + c)
//              at dims [q * HD/4, (q + 1) * HD/4): HD/4 contiguous bytes, word kk splitting
//              into its bytes (0, 2) and (1, 3). Q's A fragments, permuted the same way, are
//              built once into shared memory (Qf).
//   O += P V,  keys k of the chunk in order (P comes from S's accumulators as in attention.cu),
//              MMA n index n of dim group j -> dim n * HD/8 + j: thread (c, q) needs keys
//              2q, 2q + 1, 8 + 2q, 9 + 2q at dims [c * HD/8, (c + 1) * HD/8): HD/8 contiguous
//              bytes each; bytes of keys 2q and 2q + 1 are paired with one byte_perm.
// E4M3 -> bf16 (exact): sign and the 7 exponent/mantissa bits moved to their bf16 places (the
// exponent field then holds e, bias 7), times 2^120 (bf16 fma): bias 127, E4M3 subnormals
// included (as vLLM's Marlin and FlashInfer dequantize FP8).
#include "cuda/attention_fp8_direct.cuh"
#include "cuda/attn_splits.cuh"
#include "cuda/kv_fp8.cuh"

#include "core/knobs.h"

namespace fgcu {
namespace {

constexpr int kThreads = 128, kChunk = 16, kWarps = kThreads / 32;

// Four E4M3 bytes -> bf16x2 of bytes (0, 2) and of bytes (1, 3), the first in the low half.
__device__ __forceinline__ void e4m3x4_to_bf16_pairs(uint32_t w, uint32_t &even, uint32_t &odd) {
  const uint32_t w8 = w << 8;
  const uint32_t e = (w8 & 0x80008000u) | ((w8 & 0x7f007f00u) >> 4);
  const uint32_t o = (w & 0x80008000u) | ((w & 0x7f007f00u) >> 4);
  const uint32_t two120 = 0x7b807b80u, neg0 = 0x80008000u;  // bf16 2^120, -0 (fma adds nothing)
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(even) : "r"(e), "r"(two120), "r"(neg0));
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(odd) : "r"(o), "r"(two120), "r"(neg0));
}

// BYTES (a multiple of 4) from p into w[BYTES / 4], in the widest loads p's alignment allows
// (p is BYTES-aligned within a row, rows 32-byte aligned); nothing loaded unless ok (zeros).
template <int BYTES>
__device__ __forceinline__ void load_words(uint32_t *w, const uint8_t *p, bool ok) {
  if constexpr (BYTES % 16 == 0) {
#pragma unroll
    for (int i = 0; i < BYTES / 16; i++) {
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (ok) v = *reinterpret_cast<const uint4 *>(p + 16 * i);
      w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
    }
  } else if constexpr (BYTES % 8 == 0) {
#pragma unroll
    for (int i = 0; i < BYTES / 8; i++) {
      uint2 v = make_uint2(0u, 0u);
      if (ok) v = *reinterpret_cast<const uint2 *>(p + 8 * i);
      w[2 * i] = v.x, w[2 * i + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < BYTES / 4; i++) w[i] = ok ? *reinterpret_cast<const uint32_t *>(p + 4 * i) : 0u;
  }
}

struct DirectCfg {
  unsigned bs_mul;  // n / block_size == (umulhi(n, bs_mul) + n) >> bs_shift (as attention.cu)
  int bs_shift;
  int trigger;      // pdl_launch_dependents at the start
};

// Shared memory: Qf [HD / 16][32] uint4 (A fragments), then the merge's o [4][16][HD], m and l
// [4][16] (fp32).
template <int HD>
constexpr int direct_smem_bytes() {
  return HD / 16 * 32 * 16 + (kWarps * 16 * HD + 2 * kWarps * 16) * 4;
}

// grid (num_narrow * splits, num_kv_heads); CTA x: tile x / splits, key split x % splits.
template <int HD>
__global__ void __launch_bounds__(kThreads) attn_fp8_direct_kernel(AttnArgs p, DirectCfg cfg) {
  static_assert(HD % 32 == 0 && HD <= 128, "head_dim 32, 64, 96 or 128");
  constexpr int KW = HD / 16, VW = HD / 32;  // words of a key a thread holds for S, for O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint4 *Qf = reinterpret_cast<uint4 *>(smem_raw);
  float *red_o = reinterpret_cast<float *>(Qf + KW * 32);  // [4][16][HD]
  float *red_m = red_o + kWarps * 16 * HD, *red_l = red_m + kWarps * 16;

  const int splits = p.splits, split = blockIdx.x % splits, kvh = blockIdx.y;
  const AttnTile tile = p.narrow[blockIdx.x / splits];
  const int tok0 = p.cu_seqlens[tile.seq], ctx = p.context_lens[tile.seq];
  const int *btab = p.block_indices + p.block_indptr[tile.seq];
  pdl_wait();
  if (cfg.trigger) pdl_launch_dependents();
  const int G = p.num_heads / p.num_kv_heads, rows = tile.row_end - tile.row_begin;
  const int wq_lo = ctx + tile.row_begin / G, wq_hi = ctx + (tile.row_end - 1) / G;
  // The key range of this split, cut as attention.cu cuts it (64-key units).
  const int kv_lo = p.window > 0 ? max(0, wq_lo - p.window + 1) : 0;
  const int len = wq_hi - kv_lo + 1;
  const int chunk = ((len + splits - 1) / splits + 63) / 64 * 64;
  const int s_lo = kv_lo + split * chunk, s_hi = min(wq_hi, s_lo + chunk - 1);
  const int n_chunks = s_hi >= s_lo ? (s_hi - s_lo) / kChunk + 1 : 0;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, c8 = lane >> 2, q4 = lane & 3;

  // Qf[kk][ln] = the A fragment of k-step kk for lane ln: rows ln/4 and ln/4 + 8, dims
  // b = (ln % 4) * HD/4 + 4kk: {(b, b+2) row r, (b, b+2) row r+8, (b+1, b+3) row r, (b+1, b+3) row r+8}.
  for (int i = tid; i < KW * 32; i += kThreads) {
    const int kk = i / 32, ln = i % 32, b = (ln & 3) * (HD / 4) + kk * 4;
    uint32_t f[4];
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int r = (ln >> 2) + 8 * h, rr = tile.row_begin + r;
      uint2 v = make_uint2(0u, 0u);
      if (r < rows)
        v = *reinterpret_cast<const uint2 *>(p.q + (size_t)(tok0 + rr / G) * p.q_stride + (kvh * G + rr % G) * HD + b);
      f[h] = __byte_perm(v.x, v.y, 0x5410);      // dims b, b + 2
      f[2 + h] = __byte_perm(v.x, v.y, 0x7632);  // dims b + 1, b + 3
    }
    Qf[i] = make_uint4(f[0], f[1], f[2], f[3]);
  }
  __syncthreads();

  const uint8_t *kc = kv_ptr<uint8_t>(p.k_cache), *vc = kv_ptr<uint8_t>(p.v_cache);
  auto key_offset = [&](int pos) {  // byte offset of position pos's row in the pool
    const int bi = (int)((__umulhi((unsigned)pos, cfg.bs_mul) + (unsigned)pos) >> cfg.bs_shift);
    return (((size_t)btab[bi] * p.num_kv_heads + kvh) * p.block_size + (pos - bi * p.block_size)) * HD;
  };
  // Chunk ch's bytes for this thread: K keys c, 8 + c; V keys 2q, 2q+1, 8+2q, 9+2q (zeros past s_hi).
  auto fetch = [&](int ch, uint32_t (&kr)[2][KW], uint32_t (&vr)[4][VW]) {
    const int k0 = s_lo + ch * kChunk;
#pragma unroll
    for (int g = 0; g < 2; g++) {
      const int pos = k0 + 8 * g + c8;
      const bool ok = pos <= s_hi;
      load_words<HD / 4>(kr[g], kc + (ok ? key_offset(pos) : 0) + q4 * (HD / 4), ok);
    }
#pragma unroll
    for (int t = 0; t < 4; t++) {
      const int pos = k0 + (t >> 1) * 8 + 2 * q4 + (t & 1);
      const bool ok = pos <= s_hi;
      load_words<HD / 8>(vr[t], vc + (ok ? key_offset(pos) : 0) + c8 * (HD / 8), ok);
    }
  };

  // FP8: the scores of stored keys, so k_scale joins the scale (> 0: the engine checks it).
  const float qk_scale = p.scale * p.k_scale;
  const float scale_log2 = (p.softcap > 0.f ? 1.f : qk_scale) * kLog2e;
  float o[HD / 8][4];
#pragma unroll
  for (int j = 0; j < HD / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  auto compute = [&](int ch, const uint32_t (&kr)[2][KW], const uint32_t (&vr)[4][VW]) {
    const int kmin = s_lo + ch * kChunk, kmax = kmin + kChunk - 1;
    const bool full = kmax <= s_hi && kmax <= wq_lo && (p.window == 0 || wq_hi - kmin < p.window);
    float s[2][4];
#pragma unroll
    for (int g = 0; g < 2; g++) s[g][0] = s[g][1] = s[g][2] = s[g][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KW; kk++) {
      const uint4 qa = Qf[kk * 32 + lane];
      const uint32_t a[4] = {qa.x, qa.y, qa.z, qa.w};
#pragma unroll
      for (int g = 0; g < 2; g++) {
        uint32_t b0, b1;
        e4m3x4_to_bf16_pairs(kr[g][kk], b0, b1);
        mma16816(s[g], a, b0, b1);
      }
    }
    if (p.softcap > 0.f) {  // before the mask: masked scores must stay -inf
      const float mul = qk_scale / p.softcap;
#pragma unroll
      for (int g = 0; g < 2; g++)
#pragma unroll
        for (int e = 0; e < 4; e++) s[g][e] = p.softcap * tanhf(s[g][e] * mul);
    }
    if (!full) {
      int qpos[2];  // positions of this thread's two rows (-1: no such row)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int r = c8 + 8 * h;
        qpos[h] = r < rows ? ctx + (tile.row_begin + r) / G : -1;
      }
#pragma unroll
      for (int g = 0; g < 2; g++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int qp = qpos[e >> 1], kp = kmin + g * 8 + q4 * 2 + (e & 1);
          const bool ok = kp <= s_hi && kp <= qp && (p.window == 0 || qp - kp < p.window);
          if (!ok) s[g][e] = -INFINITY;
        }
    }
    float alpha[2];
    uint32_t pk[2][2];  // P as bf16 pairs [key group][row half]: the A fragment of O += P V
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float mx = fmaxf(fmaxf(s[0][2 * h], s[0][2 * h + 1]), fmaxf(s[1][2 * h], s[1][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx * scale_log2);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      alpha[h] = m_new == m[h] ? 1.f : ex2(m[h] - m_use);
      float rs = 0.f;
#pragma unroll
      for (int g = 0; g < 2; g++) {
        const float e0 = ex2(fmaf(s[g][2 * h], scale_log2, -m_use));
        const float e1 = ex2(fmaf(s[g][2 * h + 1], scale_log2, -m_use));
        rs += e0 + e1;
        pk[g][h] = pack_bf16(e0, e1);
      }
      l[h] = l[h] * alpha[h] + rs;
      m[h] = m_new;
    }
    if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
      for (int j = 0; j < HD / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[j][e] *= alpha[e >> 1];
    }
    const uint32_t a[4] = {pk[0][0], pk[0][1], pk[1][0], pk[1][1]};
#pragma unroll
    for (int w = 0; w < VW; w++) {
      // keys (2q, 2q+1) and (8+2q, 9+2q) paired byte by byte: dims 4w, 4w+1 (lo), 4w+2, 4w+3 (hi)
      uint32_t lo0e, lo0o, hi0e, hi0o, lo1e, lo1o, hi1e, hi1o;
      e4m3x4_to_bf16_pairs(__byte_perm(vr[0][w], vr[1][w], 0x5410), lo0e, lo0o);
      e4m3x4_to_bf16_pairs(__byte_perm(vr[0][w], vr[1][w], 0x7632), hi0e, hi0o);
      e4m3x4_to_bf16_pairs(__byte_perm(vr[2][w], vr[3][w], 0x5410), lo1e, lo1o);
      e4m3x4_to_bf16_pairs(__byte_perm(vr[2][w], vr[3][w], 0x7632), hi1e, hi1o);
      mma16816(o[4 * w], a, lo0e, lo1e);
      mma16816(o[4 * w + 1], a, lo0o, lo1o);
      mma16816(o[4 * w + 2], a, hi0e, hi1e);
      mma16816(o[4 * w + 3], a, hi0o, hi1o);
    }
  };

  // Two register sets, A and B, named (not indexed) so they stay in registers; each is refilled
  // with the chunk after next while the other computes.
  uint32_t ka[2][KW], va[4][VW], kb[2][KW], vb[4][VW];
  if (warp < n_chunks) fetch(warp, ka, va);
  for (int ch = warp; ch < n_chunks; ch += 2 * kWarps) {
    if (ch + kWarps < n_chunks) fetch(ch + kWarps, kb, vb);
    compute(ch, ka, va);
    if (ch + kWarps >= n_chunks) break;
    if (ch + 2 * kWarps < n_chunks) fetch(ch + 2 * kWarps, ka, va);
    compute(ch + kWarps, kb, vb);
  }
#pragma unroll
  for (int h = 0; h < 2; h++) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
  }

  // The four warps' partial (m, l, o) of the same rows over different keys, merged as
  // attention.cu merges its narrow tiles' warps. o[j][e]: row c + 8 (e / 2), dim
  // (2q + e % 2) * HD/8 + j.
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int row = c8 + 8 * h;
#pragma unroll
    for (int j = 0; j < HD / 8; j++) {
      red_o[(warp * 16 + row) * HD + (2 * q4) * (HD / 8) + j] = o[j][2 * h];
      red_o[(warp * 16 + row) * HD + (2 * q4 + 1) * (HD / 8) + j] = o[j][2 * h + 1];
    }
    if (q4 == 0) red_m[warp * 16 + row] = m[h], red_l[warp * 16 + row] = l[h];
  }
  __syncthreads();
  for (int i = tid; i < rows * HD; i += kThreads) {
    const int row = i / HD, d = i % HD, r = tile.row_begin + row;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; w++) M = fmaxf(M, red_m[w * 16 + row]);
    float L = 0.f, O = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; w++) {
        const float f = exp2f(red_m[w * 16 + row] - M);
        L += red_l[w * 16 + row] * f;
        O += red_o[(w * 16 + row) * HD + d] * f;
      }
    }
    const int t = tok0 + r / G, head = kvh * G + r % G;
    const float val = L > 0.f ? O / L * p.v_scale : 0.f;
    if (splits == 1) {
      p.out[(size_t)t * p.out_stride + head * HD + d] = to_bf(val);
    } else {
      const size_t idx = ((size_t)split * p.num_tokens + t) * p.num_heads + head;
      p.part_o[idx * HD + d] = val;
      if (d == 0) p.part_lse[idx] = L > 0.f ? M + log2f(L) : -INFINITY;
    }
  }
  if (splits > 1 && p.split_done && last_split(p, blockIdx.x / splits, kvh)) merge_splits(p, tile, kvh);
}

template <int HD>
int launch(const AttnArgs &a, int pdl_mode, cudaStream_t s, char *err) {
  DirectCfg cfg = {0u, 0, pdl_mode == 2};
  while (((int64_t)1 << cfg.bs_shift) < a.block_size) cfg.bs_shift++;
  cfg.bs_mul = (unsigned)((((uint64_t)1 << 32) * (((uint64_t)1 << cfg.bs_shift) - a.block_size)) / a.block_size + 1);
  constexpr int bytes = direct_smem_bytes<HD>();
  static_assert(bytes <= 48 * 1024, "no opt-in shared memory attribute set");
  const dim3 grid(a.num_narrow * a.splits, a.num_kv_heads);
  if (pdl_mode > 0) launch_k(attn_fp8_direct_kernel<HD>, grid, dim3(kThreads), bytes, s, a, cfg);
  else attn_fp8_direct_kernel<HD><<<grid, kThreads, bytes, s>>>(a, cfg);
  FGCU_LAUNCHED("attn_fp8_direct_kernel");
  return 0;
}

}  // namespace

bool attn_fp8_direct_takes(const AttnArgs &a) {
  static const bool on = fg_knob_int(FG_KNOB_ATTN_FP8_DIRECT) == 1;
  return on && a.kv_fp8 && (a.head_dim == 32 || a.head_dim == 64 || a.head_dim == 96 || a.head_dim == 128);
}

int attn_fp8_direct_narrow(const AttnArgs &a, int pdl_mode, cudaStream_t s, char *err) {
  switch (a.head_dim) {
    case 32: return launch<32>(a, pdl_mode, s, err);
    case 64: return launch<64>(a, pdl_mode, s, err);
    case 96: return launch<96>(a, pdl_mode, s, err);
    case 128: return launch<128>(a, pdl_mode, s, err);
    default:
      snprintf(err, 512, "attn_fp8_direct_narrow: head_dim %d is not 32, 64, 96 or 128", a.head_dim);
      return FG_ERR_UNSUPPORTED;
  }
}

}  // namespace fgcu
