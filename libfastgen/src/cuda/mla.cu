// Multi-head latent attention's layer steps (see mla.cuh): the latent rows into the cache, the
// absorbed queries, the paged latent attention (attention_mla.cu) and the value up-projection.
#include "cuda/mla.cuh"

#include "cuda/kv_fp8.cuh"
#include "cuda/rope.cuh"

namespace fgcu {
namespace {

constexpr int kPrepThreads = 256, kRopeThreads = 128;
constexpr int kMaxNope = 1024;  // head_matmul keeps a token tile's [TT][K] inputs in shared memory

// out[0, n) = norm(x[0, n)) * w in bf16 (or as an FP8 cache keeps it, at out_scale), by the whole
// block: RMSNorm, or LayerNorm without bias.
template <typename T>
__device__ void norm_row(const float *x, int n, const float *w, bool layer, float eps, float *scratch, T *out,
                         float out_scale) {
  float mean = 0.f;
  if (layer) {
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    mean = block_sum(s, scratch) / n;
  }
  float ss = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += (x[i] - mean) * (x[i] - mean);
  const float r = rsqrtf(block_sum(ss, scratch) / n + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) kv_store(out + i, (x[i] - mean) * r * w[i], out_scale);
}

// Rotation pair i of a RoPE part: dims (pa i, pa i + pb).
struct Pairs {
  int pa, pb;
  __device__ Pairs(bool interleaved, int half) : pa(interleaved ? 2 : 1), pb(interleaved ? 1 : half) {}
};

struct PrepArgs {
  const float *a;                // [T, QL + L + R]
  bf16 *qa;                      // [T, QL]
  bf16 *cache;                   // [num_blocks, block_size, L + R] (KV e4m3: E4M3 bytes)
  const float *q_a_norm, *kv_a_norm;
  const double *inv_freq;
  float attn_factor, eps;
  float kv_scale;                // KV e4m3: the row is stored as e4m3(row / kv_scale)
  int q_lora, latent, rope, block_size, norm_layer, interleaved;
  const int *positions, *token_seq, *block_indptr, *block_indices;
};

// One block per token: q_a's norm, the latent's norm and k_pe's rotation, the row to its slot.
// KV: the cache's element.
template <typename KV>
__global__ void __launch_bounds__(kPrepThreads) mla_prep_kernel(PrepArgs p) {
  extern __shared__ float cs[];  // cos [R / 2], sin [R / 2]
  __shared__ float scratch[32];
  const int t = blockIdx.x, half = p.rope / 2, QL = p.q_lora, L = p.latent;
  const int pos = p.positions[t], seq = p.token_seq[t];
  rope_table(cs, pos, p.inv_freq, half, p.attn_factor);
  const float *a = p.a + (size_t)t * (QL + L + p.rope);
  const int blk = p.block_indices[p.block_indptr[seq] + pos / p.block_size];
  KV *row = kv_ptr<KV>(p.cache) + ((size_t)blk * p.block_size + pos % p.block_size) * (L + p.rope);
  if (QL > 0) norm_row(a, QL, p.q_a_norm, p.norm_layer, p.eps, scratch, p.qa + (size_t)t * QL, 1.f);
  norm_row(a + QL, L, p.kv_a_norm, p.norm_layer, p.eps, scratch, row, p.kv_scale);
  const Pairs pr(p.interleaved, half);
  const float *pe = a + QL + L;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const int d1 = pr.pa * i, d2 = pr.pa * i + pr.pb;
    const float x1 = pe[d1], x2 = pe[d2], c = cs[i], s = cs[half + i];
    kv_store(row + L + d1, x1 * c - x2 * s, p.kv_scale);
    kv_store(row + L + d2, x2 * c + x1 * s, p.kv_scale);
  }
}

struct QRopeArgs {
  const bf16 *q;                 // [T, nh, dn + R]
  bf16 *qabs;                    // [T, nh, L + R]
  const double *inv_freq;
  float attn_factor;
  int heads, nope, rope, latent, interleaved;
  const int *positions;
};

// One block per token: qabs[t, h, L:] = RoPE(q[t, h, dn:]) for every head.
__global__ void __launch_bounds__(kRopeThreads) mla_q_rope_kernel(QRopeArgs p) {
  extern __shared__ float cs[];  // cos [R / 2], sin [R / 2]
  const int t = blockIdx.x, half = p.rope / 2, dq = p.nope + p.rope, D = p.latent + p.rope;
  rope_table(cs, p.positions[t], p.inv_freq, half, p.attn_factor);
  const Pairs pr(p.interleaved, half);
  for (int i = threadIdx.x; i < p.heads * half; i += blockDim.x) {
    const int h = i / half, j = i % half, d1 = pr.pa * j, d2 = pr.pa * j + pr.pb;
    const bf16 *src = p.q + ((size_t)t * p.heads + h) * dq + p.nope;
    bf16 *dst = p.qabs + ((size_t)t * p.heads + h) * D + p.latent;
    const float x1 = to_f(src[d1]), x2 = to_f(src[d2]), c = cs[j], s = cs[half + j];
    dst[d1] = to_bf(x1 * c - x2 * s);
    dst[d2] = to_bf(x2 * c + x1 * s);
  }
}

// out[t, h, n] = sum_k in[t, h, k] * w[h, k, n]: per-head products of a few dozen to a few
// hundred columns (the absorbed queries, the value up-projection).
//   in:  in[t * in_stride + h * in_head + k], k < K        bf16
//   w:   [heads, K, N] bf16 (N even)
//   out: out[t * out_stride + h * out_head + n], n < N     bf16
struct HeadMatmul {
  const bf16 *in;
  const bf16 *w;
  bf16 *out;
  int in_stride, in_head, out_stride, out_head, T, heads, K, N;
};

// Block (64, 4) over 128 output columns of one head and TT tokens: thread x owns two columns,
// thread y every fourth k; the four partial sums meet in shared memory (fixed order). Weights
// stream once per token tile, 4-byte reads along the columns.
template <int TT>
__global__ void __launch_bounds__(256) head_matmul_kernel(HeadMatmul p) {
  extern __shared__ float hm_smem[];
  float *xs = hm_smem;               // [TT][K]
  float *red = hm_smem + TT * p.K;   // [4][TT][128]
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 64 + tx;
  const int h = blockIdx.y, t0 = blockIdx.z * TT, c0 = blockIdx.x * 128, n = c0 + 2 * tx;
  for (int i = tid; i < TT * p.K; i += 256) {
    const int t = t0 + i / p.K;
    xs[i] = t < p.T ? to_f(p.in[(size_t)t * p.in_stride + (size_t)h * p.in_head + i % p.K]) : 0.f;
  }
  __syncthreads();
  float acc[TT][2];
#pragma unroll
  for (int tt = 0; tt < TT; tt++) acc[tt][0] = acc[tt][1] = 0.f;
  if (n < p.N) {
    const bf16 *w = p.w + (size_t)h * p.K * p.N + n;
    for (int k = ty; k < p.K; k += 4) {
      const float2 wv = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(w + (size_t)k * p.N));
#pragma unroll
      for (int tt = 0; tt < TT; tt++) {
        const float xv = xs[tt * p.K + k];
        acc[tt][0] = fmaf(xv, wv.x, acc[tt][0]);
        acc[tt][1] = fmaf(xv, wv.y, acc[tt][1]);
      }
    }
  }
#pragma unroll
  for (int tt = 0; tt < TT; tt++) {
    red[(ty * TT + tt) * 128 + 2 * tx] = acc[tt][0];
    red[(ty * TT + tt) * 128 + 2 * tx + 1] = acc[tt][1];
  }
  __syncthreads();
  for (int i = tid; i < TT * 128; i += 256) {
    const int tt = i / 128, col = i % 128, t = t0 + tt;
    if (t >= p.T || c0 + col >= p.N) continue;
    const float v = red[tt * 128 + col] + red[(TT + tt) * 128 + col] + red[(2 * TT + tt) * 128 + col] +
                    red[(3 * TT + tt) * 128 + col];
    p.out[(size_t)t * p.out_stride + (size_t)h * p.out_head + c0 + col] = to_bf(v);
  }
}

int head_matmul(const HeadMatmul &p, cudaStream_t st, char *err) {
  if (p.T == 0) return 0;
  // one token (decode): a tile of one, the weights read once; else tiles of 8 tokens
  const bool one = p.T == 1;
  const int TT = one ? 1 : 8;
  const dim3 grid(ceil_div(p.N, 128), p.heads, ceil_div(p.T, TT)), block(64, 4);
  const size_t smem = ((size_t)TT * p.K + 4 * TT * 128) * sizeof(float);
  if (one) head_matmul_kernel<1><<<grid, block, smem, st>>>(p);
  else head_matmul_kernel<8><<<grid, block, smem, st>>>(p);
  FGCU_LAUNCHED("head_matmul_kernel");
  return 0;
}

}  // namespace

int mla_model_of(const fgcu_model &f, MlaModel *out, char *err) {
  MlaModel &m = *out;
  m.hidden = (int)f.hidden_size, m.heads = (int)f.num_heads, m.nope = (int)f.qk_nope_head_dim;
  m.rope = (int)f.qk_rope_head_dim, m.v = (int)f.v_head_dim, m.latent = (int)f.kv_lora_rank;
  m.q_lora = (int)f.q_lora_rank, m.eps = f.latent_norm_eps, m.norm_layer = f.norm_layer != 0;
  m.interleaved = f.rope_interleaved != 0, m.scale = f.attn_scale, m.softcap = f.attn_logit_softcap;
  FGCU_CHECK(mla_attention_check(m.latent, m.rope, err));
  if (m.rope < 2 || m.rope % 2 != 0 || m.nope < 1 || m.nope > kMaxNope || m.v < 2 || m.v % 2 != 0) {
    snprintf(err, 512,
             "the CUDA backend's latent attention takes an even qk_rope_head_dim >= 2, qk_nope_head_dim <= %d and an "
             "even v_head_dim; got %d, %d and %d", kMaxNope, m.rope, m.nope, m.v);
    return FG_ERR_UNSUPPORTED;
  }
  return 0;
}

int mla_work_reserve(MlaWork &w, const MlaModel &m, int T, int splits, char *err) {
  const size_t t = T > 0 ? T : 1, nh = m.heads;
  FGCU_CHECK(ensure(w.a, t * m.a_rows() * 4, "the MLA workspace", err));
  if (m.q_lora > 0) FGCU_CHECK(ensure(w.qa, t * m.q_lora * 2, "the MLA workspace", err));
  FGCU_CHECK(ensure(w.q, t * m.q_cols() * 2, "the MLA workspace", err));
  FGCU_CHECK(ensure(w.qabs, t * nh * m.row() * 2, "the MLA workspace", err));
  FGCU_CHECK(ensure(w.lat, t * nh * m.latent * 2, "the MLA workspace", err));
  if (splits > 1) {
    FGCU_CHECK(ensure(w.part_o, (size_t)splits * t * nh * m.latent * 4, "attention splits", err));
    FGCU_CHECK(ensure(w.part_lse, (size_t)splits * t * nh * 4, "attention splits", err));
  }
  return 0;
}

void mla_work_release(MlaWork &w) {
  DevBuf *bufs[] = {&w.a, &w.qa, &w.q, &w.qabs, &w.lat, &w.part_o, &w.part_lse};
  for (DevBuf *b : bufs) release(*b);
}

uint64_t mla_work_key(const MlaWork &w) {
  const DevBuf *bufs[] = {&w.a, &w.qa, &w.q, &w.qabs, &w.lat, &w.part_o, &w.part_lse};
  uint64_t k = 0;
  for (int i = 0; i < 7; i++) k ^= (uint64_t)(uintptr_t)bufs[i]->p << i;
  return k;
}

int mla_forward(const Gemms &g, MlaWork &w, const MlaModel &m, const MlaLayer &L, const MlaStep &s,
                const bf16 *x, bf16 *o, cudaStream_t st, char *err) {
  const int T = s.T, nh = m.heads, dq = m.nope + m.rope, D = m.row();
  if (T == 0) return 0;
  float *a = (float *)w.a.p;
  bf16 *qa = (bf16 *)w.qa.p, *q = (bf16 *)w.q.p, *qabs = (bf16 *)w.qabs.p, *lat = (bf16 *)w.lat.p;
  FGCU_CHECK(linear(g, x, *L.a, a, true, false, T, m.a_rows(), m.hidden, st, err));

  PrepArgs pp;
  pp.a = a, pp.qa = qa, pp.cache = L.cache, pp.q_a_norm = L.q_a_norm, pp.kv_a_norm = L.kv_a_norm;
  pp.inv_freq = L.inv_freq, pp.attn_factor = L.attn_factor, pp.eps = m.eps;
  pp.q_lora = m.q_lora, pp.latent = m.latent, pp.rope = m.rope, pp.block_size = s.block_size;
  pp.norm_layer = m.norm_layer, pp.interleaved = m.interleaved;
  pp.positions = s.positions, pp.token_seq = s.token_seq, pp.block_indptr = s.block_indptr;
  pp.block_indices = s.block_indices;
  pp.kv_scale = L.kv_fp8 ? L.kv_scale : 1.f;
  if (L.kv_fp8) mla_prep_kernel<e4m3><<<T, kPrepThreads, m.rope * sizeof(float), st>>>(pp);
  else mla_prep_kernel<bf16><<<T, kPrepThreads, m.rope * sizeof(float), st>>>(pp);
  FGCU_LAUNCHED("mla_prep_kernel");

  if (m.q_lora > 0) FGCU_CHECK(linear(g, qa, *L.q, q, false, false, T, m.q_cols(), m.q_lora, st, err));
  else FGCU_CHECK(linear(g, x, *L.q, q, false, false, T, m.q_cols(), m.hidden, st, err));
  QRopeArgs qr;
  qr.q = q, qr.qabs = qabs, qr.inv_freq = L.inv_freq, qr.attn_factor = L.attn_factor;
  qr.heads = nh, qr.nope = m.nope, qr.rope = m.rope, qr.latent = m.latent, qr.interleaved = m.interleaved;
  qr.positions = s.positions;
  mla_q_rope_kernel<<<T, kRopeThreads, m.rope * sizeof(float), st>>>(qr);
  FGCU_LAUNCHED("mla_q_rope_kernel");
  // qabs[:, h, :L] = q_nope[:, h] W_uk[h]
  FGCU_CHECK(head_matmul({q, L.w_uk, qabs, nh * dq, dq, nh * D, D, T, nh, m.nope, m.latent}, st, err));

  MlaAttnArgs aa;
  aa.q = qabs, aa.cache = L.cache, aa.out = lat;
  aa.cu_seqlens = s.cu_seqlens, aa.context_lens = s.context_lens, aa.block_indptr = s.block_indptr;
  aa.block_indices = s.block_indices, aa.token_seq = s.token_seq;
  aa.num_tokens = T, aa.num_heads = nh, aa.latent = m.latent, aa.rope = m.rope, aa.block_size = s.block_size;
  aa.window = L.window, aa.scale = m.scale, aa.softcap = m.softcap;
  aa.splits = s.splits, aa.part_o = (float *)w.part_o.p, aa.part_lse = (float *)w.part_lse.p;
  aa.kv_fp8 = L.kv_fp8, aa.kv_scale = L.kv_fp8 ? L.kv_scale : 1.f;
  FGCU_CHECK(mla_attention(aa, st, err));
  // o[:, h] = lat[:, h] W_uvT[h]
  return head_matmul({lat, L.w_uvT, o, nh * m.latent, m.latent, nh * m.v, m.v, T, nh, m.latent, m.v}, st, err);
}

}  // namespace fgcu
