// Paged latent attention (see attention_mla.cuh): fp32 online softmax over 32-key tiles that
// cp.async gathers from the paged pool into padded shared memory, double buffered.
//
//   per CTA (token t, heads h0 .. h0 + 4 HPW, split): q rows -> smem fp32 once; per key tile:
//     scores  warp w, lane j: s[i] = q[h0 + w + 4i] . key j        (D FMAs per head a lane)
//     softmax per head over the warp's lanes (max, sum: shuffles), O times exp(m_old - m_new)
//     O      lane owns latent columns 2 lane + 64 n (n < NP): O[i][c] += p[i][j] * key j [c]
//
// Napkin math (V2-Lite: 16 heads, D = 576, latent 512; H100: 132 SMs, ~128 fp32 FMAs a clock
// an SM): a key costs 16 x (576 + 512) FMAs, so a 2048-token prefill (2.1M query-key pairs) is
// 36 GFMA a layer, ~1.2 ms; the cache read (1152 bytes a key) is far below. Decode at 4096 keys
// runs 64 splits of 2 tiles, one CTA an SM: a tile is ~6k instructions a warp (scores: per 8 dims
// one 16-byte key read, eight 16-byte q broadcasts, 32 FMAs; values: 8 reads and 64 FMAs a key),
// so ~5-10 us a layer, latency-bound (estimates; bench/gpu/mla.ts measures).
//
// FP8 caches (kv_fp8; the kernel is templated on the cache element KV, kv_fp8.cuh): key tiles
// come in as E4M3 bytes (8-byte cp.async: a row is a multiple of 8 bytes, not always of 16) and
// are widened to fp32 where the bf16 ones are; kv_scale joins the softmax scale and the output's
// 1 / l.
#include "cuda/attention_mla.cuh"

#include "cuda/attention_mla_mma.cuh"
#include "cuda/cp_async.cuh"
#include "cuda/kv_fp8.cuh"

namespace fgcu {
namespace {

constexpr int kWarps = 4, kThreads = 32 * kWarps;
constexpr int kKeys = 32;            // keys per tile: one per lane in the score loop
constexpr int kMaxLatent = 512;      // 64 columns per lane pair block, NP <= 8
constexpr int kMaxRope = 256;
constexpr int kMaxSplits = 64;

// Shared memory of one CTA: q [HG][D] fp32, then two key tiles [kKeys][D + 8] of the cache's
// element (the pad keeps rows 16-byte (FP8: 8-byte) aligned and spreads a warp's row reads over
// the banks).
size_t smem_bytes(int heads_per_cta, int D, int elem_bytes) {
  return (size_t)heads_per_cta * D * 4 + 2ull * kKeys * (D + 8) * elem_bytes;
}

// One chunk of 8 cache elements: 16 bytes of bf16, 8 of E4M3.
__device__ __forceinline__ void cp_async_row8(bf16 *dst, const bf16 *src, bool ok) { cp_async16(dst, src, ok); }
__device__ __forceinline__ void cp_async_row8(e4m3 *dst, const e4m3 *src, bool ok) { cp_async8(dst, src, ok); }

template <int HPW, int NP, typename KV>
__global__ void __launch_bounds__(kThreads) mla_attn_kernel(MlaAttnArgs p) {
  constexpr int HG = kWarps * HPW;  // heads of the CTA: warp w owns h0 + w + kWarps * i, i < HPW
  constexpr bool F8 = kv_is_fp8<KV>();
  const int L = p.latent, D = p.latent + p.rope, LDK = D + 8, CH = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float *qs = reinterpret_cast<float *>(smem_raw);  // [HG][D]
  KV *ks = reinterpret_cast<KV *>(qs + HG * D);     // [2][kKeys][LDK]

  const int groups = (p.num_heads + HG - 1) / HG;
  const int t = blockIdx.x / groups, h0 = (blockIdx.x % groups) * HG, split = blockIdx.y;
  const int seq = p.token_seq[t];
  const int pos = p.context_lens[seq] + (t - p.cu_seqlens[seq]);
  const int *btab = p.block_indices + p.block_indptr[seq];
  const MlaKeys keys = mla_split_keys(p, pos, pos, split, kKeys);
  const int s_lo = keys.s_lo, s_hi = keys.s_hi, n_tiles = keys.n_tiles;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  // Keys k0 .. k0 + 31 of the split into buffer buf: warp w copies rows w, w + 4, ..., a lane
  // 16-byte chunks of one row at a time; rows past s_hi fill with zeros.
  auto load_tile = [&](int k0, int buf) {
    for (int key = warp; key < kKeys; key += kWarps) {
      const int kp = k0 + key;
      const bool ok = kp <= s_hi;
      const KV *src = kv_ptr<KV>(p.cache);
      if (ok) src += ((size_t)btab[kp / p.block_size] * p.block_size + kp % p.block_size) * D;
      KV *dst = ks + (size_t)(buf * kKeys + key) * LDK;
      for (int c = lane; c < CH; c += 32) cp_async_row8(dst + c * 8, src + (ok ? c * 8 : 0), ok);
    }
  };
  if (n_tiles > 0) load_tile(s_lo, 0);
  cp_async_commit();
  for (int i = tid; i < HG * D; i += kThreads) {  // heads past num_heads score zeros, never written
    const int h = h0 + i / D;
    qs[i] = h < p.num_heads ? to_f(p.q[((size_t)t * p.num_heads + h) * D + i % D]) : 0.f;
  }

  float m[HPW], l[HPW], o[HPW][NP][2];
#pragma unroll
  for (int i = 0; i < HPW; i++) {
    m[i] = -INFINITY, l[i] = 0.f;
#pragma unroll
    for (int n = 0; n < NP; n++) o[i][n][0] = o[i][n][1] = 0.f;
  }
  for (int it = 0; it < n_tiles; it++) {
    const int buf = it & 1, k0 = s_lo + it * kKeys;
    if (it + 1 < n_tiles) load_tile(k0 + kKeys, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();  // this tile (and, the first time, qs) visible to every warp
    const KV *kt = ks + (size_t)buf * kKeys * LDK;
    const int nk = min(kKeys, s_hi - k0 + 1);  // >= 1: k0 <= s_hi

    float s[HPW];
#pragma unroll
    for (int i = 0; i < HPW; i++) s[i] = 0.f;
    const KV *kr = kt + (size_t)lane * LDK;
    for (int d = 0; d < D; d += 8) {
      float kv[8];
      kv_load8(kr + d, kv);
#pragma unroll
      for (int i = 0; i < HPW; i++) {
        const float4 *qr = reinterpret_cast<const float4 *>(qs + (warp + kWarps * i) * D + d);
        const float4 a = qr[0], b = qr[1];
        s[i] = fmaf(a.x, kv[0], s[i]), s[i] = fmaf(a.y, kv[1], s[i]);
        s[i] = fmaf(a.z, kv[2], s[i]), s[i] = fmaf(a.w, kv[3], s[i]);
        s[i] = fmaf(b.x, kv[4], s[i]), s[i] = fmaf(b.y, kv[5], s[i]);
        s[i] = fmaf(b.z, kv[6], s[i]), s[i] = fmaf(b.w, kv[7], s[i]);
      }
    }
    // Online softmax per head; key 0 of the tile is always in range, so every max is finite.
    float pk[HPW];
#pragma unroll
    for (int i = 0; i < HPW; i++) {
      float sc = s[i] * (F8 ? p.scale * p.kv_scale : p.scale);  // FP8: scores of stored rows
      if (p.softcap > 0.f) sc = p.softcap * tanhf(sc / p.softcap);
      if (lane >= nk) sc = -INFINITY;
      float mx = sc;
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(m[i], mx);
      const float alpha = __expf(m[i] - m_new);  // 0 on the first tile (m = -inf)
      pk[i] = lane < nk ? __expf(sc - m_new) : 0.f;
      float ps = pk[i];
      for (int off = 16; off > 0; off >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, off);
      l[i] = l[i] * alpha + ps;
      m[i] = m_new;
#pragma unroll
      for (int n = 0; n < NP; n++) o[i][n][0] *= alpha, o[i][n][1] *= alpha;
    }
    for (int j = 0; j < nk; j++) {
      float pj[HPW];
#pragma unroll
      for (int i = 0; i < HPW; i++) pj[i] = __shfl_sync(0xffffffffu, pk[i], j);
      const KV *vr = kt + (size_t)j * LDK;
#pragma unroll
      for (int n = 0; n < NP; n++) {
        const int c = 2 * lane + 64 * n;
        if (c >= L) break;
        const float2 v = kv_load2(vr + c);
#pragma unroll
        for (int i = 0; i < HPW; i++) {
          o[i][n][0] = fmaf(pj[i], v.x, o[i][n][0]);
          o[i][n][1] = fmaf(pj[i], v.y, o[i][n][1]);
        }
      }
    }
    __syncthreads();  // everyone is done with buf before the next iteration refills it
  }
  cp_async_wait<0>();

#pragma unroll
  for (int i = 0; i < HPW; i++) {
    const int h = h0 + warp + kWarps * i;
    if (h >= p.num_heads) continue;
    const float inv = l[i] > 0.f ? (F8 ? p.kv_scale : 1.f) / l[i] : 0.f;  // FP8: the values' scale
    if (p.splits == 1) {
      bf16 *dst = p.out + ((size_t)t * p.num_heads + h) * L;
#pragma unroll
      for (int n = 0; n < NP; n++) {
        const int c = 2 * lane + 64 * n;
        if (c >= L) break;
        *reinterpret_cast<__nv_bfloat162 *>(dst + c) = __floats2bfloat162_rn(o[i][n][0] * inv, o[i][n][1] * inv);
      }
    } else {
      const size_t idx = ((size_t)split * p.num_tokens + t) * p.num_heads + h;
      float *dst = p.part_o + idx * L;
#pragma unroll
      for (int n = 0; n < NP; n++) {
        const int c = 2 * lane + 64 * n;
        if (c >= L) break;
        dst[c] = o[i][n][0] * inv, dst[c + 1] = o[i][n][1] * inv;
      }
      if (lane == 0) p.part_lse[idx] = l[i] > 0.f ? m[i] + __logf(l[i]) : -INFINITY;
    }
  }
}

// Merges the key splits: out[t, h] = sum_s w_s o_s / sum_s w_s, w_s = exp(lse_s - max lse).
// One block per (token, head).
__global__ void mla_combine_kernel(MlaAttnArgs p) {
  const int t = blockIdx.x / p.num_heads, h = blockIdx.x % p.num_heads, L = p.latent;
  float M = -INFINITY;
  for (int s = 0; s < p.splits; s++) M = fmaxf(M, p.part_lse[((size_t)s * p.num_tokens + t) * p.num_heads + h]);
  for (int c = threadIdx.x; c < L; c += blockDim.x) {
    float W = 0.f, O = 0.f;
    if (M != -INFINITY)
      for (int s = 0; s < p.splits; s++) {
        const size_t idx = ((size_t)s * p.num_tokens + t) * p.num_heads + h;
        const float f = __expf(p.part_lse[idx] - M);
        W += f;
        O += f * p.part_o[idx * L + c];
      }
    p.out[((size_t)t * p.num_heads + h) * L + c] = to_bf(W > 0.f ? O / W : 0.f);
  }
}

int heads_per_warp(int num_heads) { return num_heads >= 16 ? 4 : num_heads >= 8 ? 2 : 1; }

template <int HPW, int NP, typename KV>
int launch(const MlaAttnArgs &a, cudaStream_t s, char *err) {
  const int D = a.latent + a.rope, HG = kWarps * HPW;
  const size_t bytes = smem_bytes(HG, D, (int)sizeof(KV));
  // The attribute is per device (one bit each) and per instantiation; a race only repeats it. It
  // is a ceiling for every later launch of this instantiation, whose D varies with the model (up to
  // 64 NP latent columns plus kMaxRope), so it is set to the largest any of them can ask for, not
  // to this call's size (a smaller first call would make a larger later one an invalid argument).
  static unsigned configured = 0;
  int dev = 0;
  FGCU_TRY(cudaGetDevice(&dev));
  const unsigned bit = 1u << (dev & 31);
  if (!(__atomic_load_n(&configured, __ATOMIC_ACQUIRE) & bit)) {
    int optin = 0;
    FGCU_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    const size_t most = smem_bytes(HG, 64 * NP + kMaxRope, (int)sizeof(KV));
    const int ceiling = (int)(most < (size_t)optin ? most : (size_t)optin);
    FGCU_TRY(cudaFuncSetAttribute(mla_attn_kernel<HPW, NP, KV>, cudaFuncAttributeMaxDynamicSharedMemorySize, ceiling));
    __atomic_fetch_or(&configured, bit, __ATOMIC_RELEASE);
  }
  if (bytes > 48 * 1024) {
    int optin = 0;
    FGCU_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bytes > (size_t)optin) {
      snprintf(err, 512, "mla attention: %zu bytes of shared memory for %d heads of width %d exceed the GPU's %d",
               bytes, HG, D, optin);
      return FG_ERR_UNSUPPORTED;
    }
  }
  const dim3 grid(a.num_tokens * ((a.num_heads + HG - 1) / HG), a.splits);
  mla_attn_kernel<HPW, NP, KV><<<grid, kThreads, bytes, s>>>(a);
  FGCU_LAUNCHED("mla_attn_kernel");
  return 0;
}

template <int HPW, typename KV>
int launch_np(const MlaAttnArgs &a, cudaStream_t s, char *err) {
  const int np = (a.latent + 63) / 64;
  if (np <= 1) return launch<HPW, 1, KV>(a, s, err);
  if (np <= 2) return launch<HPW, 2, KV>(a, s, err);
  if (np <= 4) return launch<HPW, 4, KV>(a, s, err);
  return launch<HPW, 8, KV>(a, s, err);
}

template <int HPW>
int launch_kv(const MlaAttnArgs &a, cudaStream_t s, char *err) {
  return a.kv_fp8 ? launch_np<HPW, e4m3>(a, s, err) : launch_np<HPW, bf16>(a, s, err);
}

}  // namespace

int mla_attention_check(int latent, int rope, char *err) {
  if (latent < 2 || latent > kMaxLatent || latent % 2 != 0 || rope < 0 || rope > kMaxRope ||
      (latent + rope) % 8 != 0) {
    snprintf(err, 512,
             "the CUDA backend's latent attention takes kv_lora_rank <= %d (even) and qk_rope_head_dim <= %d with "
             "kv_lora_rank + qk_rope_head_dim a multiple of 8; got %d and %d",
             kMaxLatent, kMaxRope, latent, rope);
    return FG_ERR_UNSUPPORTED;
  }
  return 0;
}

int mla_choose_splits(int num_tokens, int num_heads, int max_context, int num_sms) {
  static const int forced = fg_knob_int(FG_KNOB_ATTN_SPLITS);  // A/B runs: this many, at least 1
  if (forced >= 0) return forced > 1 ? (forced < kMaxSplits ? forced : kMaxSplits) : 1;
  const int hg = kWarps * heads_per_warp(num_heads);
  const int ctas = num_tokens * ((num_heads + hg - 1) / hg);
  if (ctas == 0 || ctas >= num_sms) return 1;
  int splits = (2 * num_sms + ctas - 1) / ctas;
  const int by_len = max_context / 64;  // at least 64 keys (2 tiles) a split
  if (splits > by_len) splits = by_len;
  if (splits > kMaxSplits) splits = kMaxSplits;
  return splits < 1 ? 1 : splits;
}

int mla_attention(const MlaAttnArgs &a, cudaStream_t s, char *err) {
  if (a.num_tokens == 0) return 0;
  FGCU_CHECK(mla_attention_check(a.latent, a.rope, err));
  if (a.splits < 1 || a.splits > kMaxSplits || (a.splits > 1 && (!a.part_o || !a.part_lse))) {
    snprintf(err, 512, "mla_attention: %d key splits (at most %d, with their partial buffers)", a.splits, kMaxSplits);
    return FG_ERR_INTERNAL;
  }
  if (mla_mma_takes()) FGCU_CHECK(mla_attention_mma(a, s, err));  // FASTGEN_MLA_KERNEL=mma*
  else switch (heads_per_warp(a.num_heads)) {
    case 1: FGCU_CHECK(launch_kv<1>(a, s, err)); break;
    case 2: FGCU_CHECK(launch_kv<2>(a, s, err)); break;
    default: FGCU_CHECK(launch_kv<4>(a, s, err)); break;
  }
  if (a.splits > 1) {
    mla_combine_kernel<<<a.num_tokens * a.num_heads, 128, 0, s>>>(a);
    FGCU_LAUNCHED("mla_combine_kernel");
  }
  return 0;
}

}  // namespace fgcu
