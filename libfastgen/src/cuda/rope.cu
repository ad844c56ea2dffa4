// Bias + qk-norm + RoPE on q and k, fused with the KV-cache write (see rope.cuh).
#include "cuda/rope.cuh"

#include "cuda/gemv2.cuh"

namespace fgcu {
namespace {

constexpr int kRopeThreads = 256;

// Pulls p.prefetch_bytes of p.prefetch into L2 (sm_90: the TMA's bulk prefetch, one instruction
// per 1 MiB piece, the grid's blocks taking turns; no registers held, no effect on any result).
// Issued after pdl_wait: before it the qkv GEMV still streams, and bytes that DRAM moved then
// would only make it finish later; after it DRAM has nothing else to do until the o GEMV.
__device__ __forceinline__ void l2_prefetch(const RopeArgs &p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (!p.prefetch || threadIdx.x != 0) return;
  constexpr size_t kPiece = 1 << 20;
  const size_t blocks = (size_t)gridDim.x * gridDim.y, b = (size_t)blockIdx.y * gridDim.x + blockIdx.x;
  for (size_t off = b * kPiece; off < p.prefetch_bytes; off += blocks * kPiece) {
    const size_t n = p.prefetch_bytes - off < kPiece ? p.prefetch_bytes - off : kPiece;
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"((const char *)p.prefetch + off),
                 "r"((uint32_t)(n & ~(size_t)15)));
  }
#endif
}

// qk_norm: rstd[h] = 1 / sqrt(mean((row_h + bias_h)^2) + eps) of the token's q and k heads h
// (one warp per head), for the main loop to scale by. Reads the whole row before anything of it
// is written, so the launch keeps one block per token when qk_norm is on.
__device__ __forceinline__ void head_rstd(float *rstd, const bf16 *row, const float *bias, int heads,
                                          int hd, float eps) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  for (int h = warp; h < heads; h += warps) {
    const float ss = head_sumsq(row, bias, h, hd);
    if (lane == 0) rstd[h] = rsqrtf(ss / hd + eps);
  }
  __syncthreads();
}

// 8 dims per thread with 16-byte accesses; needs rot % 16 == 0 and hd % 8 == 0. KV: the cache's
// element (bf16, or e4m3 written from the fp32 values).
template <typename KV>
__global__ void __launch_bounds__(kRopeThreads) rope_kernel_vec(RopeArgs p) {
  extern __shared__ float cs[];  // cos [rot/2], sin [rot/2], then (qk_norm) rstd [nh + nkv]
  const int nh = p.nh, nkv = p.nkv, hd = p.hd, rot = p.rot, block_size = p.block_size;
  const int t = blockIdx.x, half = rot / 2, width = (nh + 2 * nkv) * hd, pos = p.positions[t];
  // positions, sequences and block tables were uploaded before the step (no kernel writes them)
  rope_table(cs, pos, p.inv_freq, half, p.attn_factor);
  const int seq = p.token_seq[t];
  const int blk = p.block_indices[p.block_indptr[seq] + pos / block_size];
  pdl_wait();
  pdl_launch_dependents();
  l2_prefetch(p);
  bf16 *row = p.qkv + (size_t)t * width;
  const float *bias = p.bias;
  float *rstd = cs + rot;
  if (p.q_norm) head_rstd(rstd, row, bias, nh + nkv, hd, p.eps);
  const size_t slot = (size_t)pos % block_size;
  const int pairs = half / 8, pass = (hd - rot) / 8, per_head = pairs + pass;
  // gridDim.y blocks share a token's items (short batches: one item per thread, one round trip)
  for (int i = blockIdx.y * kRopeThreads + threadIdx.x; i < (nh + nkv) * per_head + nkv * (hd / 8);
       i += kRopeThreads * gridDim.y) {
    float a[8], c[8];
    if (i < (nh + nkv) * per_head) {
      const int head = i / per_head, j = i % per_head, base = head * hd;
      // q heads back into the row (bf16), k heads to their cache slot
      auto put8 = [&](int d, const float *v) {
        if (head < nh) store8(row + base + d, v);
        else kv_store8(kv_ptr<KV>(p.k_cache) + (((size_t)blk * nkv + (head - nh)) * block_size + slot) * hd + d, v,
                       p.k_scale);
      };
      const float *wn = p.q_norm ? (head < nh ? p.q_norm : p.k_norm) : nullptr;
      const float r = wn ? rstd[head] : 1.f;
      if (j < pairs) {  // dims d..d+7 with their partners d+half..
        const int d = j * 8;
        load8(row + base + d, a);
        load8(row + base + d + half, c);
#pragma unroll
        for (int k = 0; k < 8; k++) {
          float x1 = a[k], x2 = c[k];
          if (bias) x1 += bias[base + d + k], x2 += bias[base + d + half + k];
          if (wn) x1 *= r * wn[d + k], x2 *= r * wn[d + half + k];
          const float cn = cs[d + k], sn = cs[half + d + k];
          rope_rotate(x1, x2, cn, sn, a[k], c[k]);
        }
        put8(d, a);
        put8(d + half, c);
      } else {
        const int d = rot + (j - pairs) * 8;
        load8(row + base + d, a);
#pragma unroll
        for (int k = 0; k < 8; k++) {
          if (bias) a[k] += bias[base + d + k];
          if (wn) a[k] *= r * wn[d + k];
        }
        put8(d, a);
      }
    } else {  // v
      const int vi = i - (nh + nkv) * per_head, kh = vi / (hd / 8), d = (vi % (hd / 8)) * 8;
      const int col = (nh + nkv) * hd + kh * hd + d;
      load8(row + col, a);
      if (bias)
#pragma unroll
        for (int k = 0; k < 8; k++) a[k] += bias[col + k];
      kv_store8(kv_ptr<KV>(p.v_cache) + (((size_t)blk * nkv + kh) * block_size + slot) * hd + d, a, p.v_scale);
    }
  }
}

// Any sizes (interleaved pairs, rot % 16 != 0, ...): one warp a q or k head (rope.cuh
// rope_head_warp), then V.
template <typename KV>
__global__ void __launch_bounds__(kRopeThreads) rope_kernel(RopeArgs p) {
  extern __shared__ float cs[];  // cos [rot / 2], sin [rot / 2]
  const int nh = p.nh, nkv = p.nkv, hd = p.hd, block_size = p.block_size;
  const int t = blockIdx.x, width = (nh + 2 * nkv) * hd;
  const int pos = p.positions[t];  // positions, sequences, block tables: uploaded before the step
  const int seq = p.token_seq[t];
  const int blk = p.block_indices[p.block_indptr[seq] + pos / block_size];
  rope_table(cs, pos, p.inv_freq, p.rot / 2, p.attn_factor);  // once a token, not once a head
  pdl_wait();
  pdl_launch_dependents();
  l2_prefetch(p);
  bf16 *row = p.qkv + (size_t)t * width;
  const size_t slot = (size_t)pos % block_size;
  auto cache_at = [&](bf16 *cache, int kh) {
    return kv_ptr<KV>(cache) + (((size_t)blk * nkv + kh) * block_size + slot) * hd;
  };
  // A head's lanes read their own dims (and, with qk-norm, the whole head before the shuffles)
  // before writing them: q heads go back into the row in place.
  const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int head = warp; head < nh + nkv; head += warps)
    rope_head_warp(p, row, head, cs, [&](int d, float x) {
      if (head < nh) row[head * hd + d] = to_bf(x);
      else kv_store(cache_at(p.k_cache, head - nh) + d, x, p.k_scale);
    });
  for (int i = threadIdx.x; i < nkv * hd; i += kRopeThreads) {
    const int kh = i / hd, d = i % hd, col = (nh + nkv) * hd + i;
    float x = to_f(row[col]);
    if (p.bias) x += p.bias[col];
    kv_store(cache_at(p.v_cache, kh) + d, x, p.v_scale);
  }
}

// qkv_gemv_rope's kernel (rope.cuh): 4 warps a block, one pair of output rows a warp. EARLY:
// the next kernel (attention) is let in as soon as every block has passed pdl_wait, as the plain
// GEMV does; else only once a block's weights are streamed (attention's CTAs, resident early, took
// SMs from the qkv GEMV when RoPE was folded into attention: bench/results/device-wave15-h100.md).
// DEFER: x is rms's RMSNorm row, its scale applied to the sums (gemv2.cuh XRmsDeferred).
template <typename KV, bool EARLY, bool DEFER>
__global__ void __launch_bounds__(128, DEFER ? 7 : 8) qkv_gemv_rope_kernel(const bf16 *__restrict__ x, RmsRows rms,
                                                            const bf16 *__restrict__ w, RopeArgs p, int K) {
  const int hd = p.hd, half_hd = hd / 2, rot = p.rot, half = rot / 2, qk = p.nh + p.nkv;
  const int pair_ = blockIdx.x * 4 + (threadIdx.x >> 5);
  const bool live = pair_ < (qk + p.nkv) * half_hd;  // dead warps still pass pdl_wait
  const int pair = live ? pair_ : 0, head = pair / half_hd, j = pair % half_hd;
  const bool rotate = head < qk && j < half;
  int d1, d2;  // the head's two dims this warp computes
  if (rotate) d1 = p.interleaved ? 2 * j : j, d2 = p.interleaved ? 2 * j + 1 : j + half;
  else if (head < qk) d1 = rot + 2 * (j - half), d2 = d1 + 1;
  else d1 = 2 * j, d2 = d1 + 1;
  const int n0 = head * hd + d1, n1 = head * hd + d2;
  const int bs = p.block_size;
  int pos = 0, blk = 0;
  float acc[2];
  auto xr = x_row<DEFER>(x, rms);
  const bool ran = gemv2_dots(w + (size_t)n0 * K, w + (size_t)n1 * K, K, live, [&](auto &) {
    // While the first weights arrive: the token's slot (positions, sequences and block tables
    // were uploaded before the step; no kernel writes them).
    pos = p.positions[0];
    if (head >= p.nh) blk = p.block_indices[p.block_indptr[p.token_seq[0]] + pos / bs];
    pdl_wait();
    if (EARLY) pdl_launch_dependents();
  }, xr, acc);
  if (!EARLY) pdl_launch_dependents();
  if (!ran || (threadIdx.x & 31) != 0) return;
  // gemm() stores the sums as bf16 and the RoPE kernel reads them back: the same rounding here
  float x1 = to_f(to_bf(acc[0])), x2 = to_f(to_bf(acc[1]));
  if (p.bias) x1 += p.bias[n0], x2 += p.bias[n1];
  if (rotate) {
    float c, s;
    rope_cos_sin(pos, p.inv_freq[j], p.attn_factor, c, s);
    rope_rotate(x1, x2, c, s, x1, x2);
  }
  if (head < p.nh) {
    p.qkv[n0] = to_bf(x1);
    p.qkv[n1] = to_bf(x2);
    return;
  }
  const bool k = head < qk;
  const size_t slot = (size_t)pos % bs;
  KV *cache = kv_ptr<KV>(k ? p.k_cache : p.v_cache) + (((size_t)blk * p.nkv + (k ? head - p.nh : head - qk)) * bs + slot) * hd;
  const float scale = k ? p.k_scale : p.v_scale;
  kv_store(cache + d1, x1, scale);
  kv_store(cache + d2, x2, scale);
}

}  // namespace

bool qkv_rope_fusable(const RopeArgs &a, int N, int K) {
  static const int mode = fg_knob_int(FG_KNOB_QKV_ROPE);
  const int rot = a.inv_freq ? a.rot : 0;
  return mode > 0 && !a.q_norm && !a.prefetch && a.hd % 2 == 0 && (a.hd - rot) % 2 == 0 && K % 8 == 0 &&
         N == (a.nh + 2 * a.nkv) * a.hd;
}

bool qkv_rope_early() { return fg_knob_int(FG_KNOB_QKV_ROPE) == 2; }

bool qkv_rope_small() { return fg_knob_int(FG_KNOB_QKV_ROPE) == 3; }

bool qkv_gemv_rope_takes(const RopeArgs &a, int T, int N, int K) { return T == 1 && qkv_rope_fusable(a, N, K); }

namespace {
template <typename KV, bool DEFER>
void launch_qkv_gemv_rope(const bf16 *x, const RmsRows &rms, const bf16 *w, const RopeArgs &p, int N, int K,
                          cudaStream_t stream) {
  const dim3 grid(ceil_div(N / 2, 4)), block(128);
  if (qkv_rope_early()) launch_k(qkv_gemv_rope_kernel<KV, true, DEFER>, grid, block, 0, stream, x, rms, w, p, K);
  else launch_k(qkv_gemv_rope_kernel<KV, false, DEFER>, grid, block, 0, stream, x, rms, w, p, K);
}
}  // namespace

int qkv_gemv_rope(const bf16 *x, const RmsRows *defer, const bf16 *w, const RopeArgs &a, int N, int K,
                  cudaStream_t stream, char *err) {
  if (!qkv_gemv_rope_takes(a, 1, N, K)) {
    snprintf(err, 512, "qkv_gemv_rope: this layer's qkv (N %d, K %d) does not take RoPE in its GEMV", N, K);
    return FG_ERR_INTERNAL;
  }
  RopeArgs p = a;
  if (!p.inv_freq) p.rot = 0;
  const RmsRows rms = defer ? *defer : RmsRows();
  if (p.kv_fp8 && defer) launch_qkv_gemv_rope<e4m3, true>(x, rms, w, p, N, K, stream);
  else if (p.kv_fp8) launch_qkv_gemv_rope<e4m3, false>(x, rms, w, p, N, K, stream);
  else if (defer) launch_qkv_gemv_rope<bf16, true>(x, rms, w, p, N, K, stream);
  else launch_qkv_gemv_rope<bf16, false>(x, rms, w, p, N, K, stream);
  FGCU_LAUNCHED("qkv_gemv_rope");
  return 0;
}

int qkv_rope_kv_write(const RopeArgs &a, int T, cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  RopeArgs p = a;
  if (!p.inv_freq) p.rot = 0;
  const size_t smem = (p.rot + (p.q_norm ? p.nh + p.nkv : 0)) * sizeof(float);
  if (p.rot % 16 == 0 && p.hd % 8 == 0 && !p.interleaved) {
    // items (8 dims each) per token; up to 64 tokens, one block per 256 of them. qk_norm reads
    // the whole row before the in-place q writes: one block per token then.
    const int items = (p.nh + p.nkv) * (p.rot / 16 + (p.hd - p.rot) / 8) + p.nkv * (p.hd / 8);
    const int ys = T <= 64 && !p.q_norm ? ceil_div(items, kRopeThreads) : 1;
    if (p.kv_fp8) launch_k(rope_kernel_vec<e4m3>, dim3(T, ys), dim3(kRopeThreads), smem, stream, p);
    else launch_k(rope_kernel_vec<bf16>, dim3(T, ys), dim3(kRopeThreads), smem, stream, p);
  } else {
    const size_t table = p.rot * sizeof(float);
    if (p.kv_fp8) launch_k(rope_kernel<e4m3>, dim3(T), dim3(kRopeThreads), table, stream, p);
    else launch_k(rope_kernel<bf16>, dim3(T), dim3(kRopeThreads), table, stream, p);
  }
  FGCU_LAUNCHED("rope_kernel");
  return 0;
}

}  // namespace fgcu
