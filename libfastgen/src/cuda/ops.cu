// Fused elementwise / row kernels of the CUDA backend (see ops.cuh).
#include "cuda/ops.cuh"

namespace fgcu {
namespace {

constexpr int kNormThreads = 512;
constexpr int kMaxNormCols = 16384;  // 32 values per thread in registers

// One block per row; the row stays in registers (PER values per thread, i = tid + j * 512), so
// the mean is exact before the variance pass (LayerNorm inputs can carry a large offset).
// The norm weight and bias are read into registers before pdl_wait, while the kernel before is
// still running (weights: no kernel of the step writes them); measured -0.2 ms per Llama-7B
// decode step on an H200 (bench/results/cuda-notes.md).
template <int PER>
__global__ void __launch_bounds__(kNormThreads)
    norm_kernel(float *h, const int *rows, int H, const float *add_a, const float *add_b,
                bool write_back, bool write_normed, int op, const float *w, const float *b, float eps,
                bf16 *out) {
  __shared__ float scratch[32];
  float wv[PER], bv[PER];
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    wv[j] = op != kNormNone && i < H ? w[i] : 0.f;
    bv[j] = op != kNormNone && b && i < H ? b[i] : 0.f;
  }
  const size_t row = rows ? rows[blockIdx.x] : blockIdx.x;  // logit rows: uploaded before the step
  pdl_wait();
  pdl_launch_dependents();
  float *src = h + row * H;
  float v[PER];
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    v[j] = 0.f;
    if (i < H) {
      float x = src[i];
      if (add_a) x += add_a[i];
      if (add_b) x += add_b[i];
      if (write_back && (add_a || add_b)) src[i] = x;
      v[j] = x;
      sum += x;
    }
  }
  bf16 *o = out + (size_t)blockIdx.x * H;
  float mean = 0.f, scale = 1.f;
  if (op != kNormNone) {
    if (op == kNormLayer) mean = block_sum(sum, scratch) / H;
    float ss = 0.f;
#pragma unroll
    for (int j = 0; j < PER; j++)
      if (threadIdx.x + j * kNormThreads < H) ss += (v[j] - mean) * (v[j] - mean);
    scale = rsqrtf(block_sum(ss, scratch) / H + eps);
  }
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i >= H) break;
    if (op == kNormNone) {
      o[i] = to_bf(v[j]);
    } else {
      const float y = (v[j] - mean) * scale * wv[j] + bv[j];
      if (write_normed) src[i] = y;
      o[i] = to_bf(y);
    }
  }
}

constexpr int kRopeThreads = 256;

// cos/sin of position * inv_freq for one token into cs[0..half) / cs[half..rot): the angle and
// its reduction to [-pi, pi] in double (positions reach 1e6), the sine and cosine in float.
__device__ __forceinline__ void rope_table(float *cs, int pos, const double *inv_freq, int half) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    double a = (double)pos * inv_freq[i];
    a -= 6.283185307179586476925 * rint(a * 0.159154943091895335769);
    float sn, cn;
    sincosf((float)a, &sn, &cn);
    cs[i] = cn;
    cs[half + i] = sn;
  }
  __syncthreads();
}

// 8 dims per thread with 16-byte accesses; needs rot % 16 == 0 and hd % 8 == 0.
__global__ void __launch_bounds__(kRopeThreads)
    rope_kernel_vec(bf16 *qkv, const float *bias, const int *positions, const int *token_seq,
                    const int *block_indptr, const int *block_indices, const double *inv_freq,
                    int nh, int nkv, int hd, int rot, int block_size, bf16 *k_cache, bf16 *v_cache) {
  extern __shared__ float cs[];
  const int t = blockIdx.x, half = rot / 2, width = (nh + 2 * nkv) * hd, pos = positions[t];
  // positions, sequences and block tables were uploaded before the step (no kernel writes them)
  rope_table(cs, pos, inv_freq, half);
  const int seq = token_seq[t];
  const int blk = block_indices[block_indptr[seq] + pos / block_size];
  pdl_wait();
  pdl_launch_dependents();
  bf16 *row = qkv + (size_t)t * width;
  const size_t slot = (size_t)pos % block_size;
  const int pairs = half / 8, pass = (hd - rot) / 8, per_head = pairs + pass;
  // gridDim.y blocks share a token's items (short batches: one item per thread, one round trip)
  for (int i = blockIdx.y * kRopeThreads + threadIdx.x; i < (nh + nkv) * per_head + nkv * (hd / 8);
       i += kRopeThreads * gridDim.y) {
    float a[8], c[8];
    if (i < (nh + nkv) * per_head) {
      const int head = i / per_head, j = i % per_head, base = head * hd;
      bf16 *dst = head < nh ? row + base
                            : k_cache + (((size_t)blk * nkv + (head - nh)) * block_size + slot) * hd;
      if (j < pairs) {  // dims d..d+7 with their partners d+half..
        const int d = j * 8;
        load8(row + base + d, a);
        load8(row + base + d + half, c);
#pragma unroll
        for (int k = 0; k < 8; k++) {
          float x1 = a[k], x2 = c[k];
          if (bias) x1 += bias[base + d + k], x2 += bias[base + d + half + k];
          const float cn = cs[d + k], sn = cs[half + d + k];
          a[k] = x1 * cn - x2 * sn;
          c[k] = x2 * cn + x1 * sn;
        }
        store8(dst + d, a);
        store8(dst + d + half, c);
      } else {
        const int d = rot + (j - pairs) * 8;
        load8(row + base + d, a);
        if (bias)
#pragma unroll
          for (int k = 0; k < 8; k++) a[k] += bias[base + d + k];
        store8(dst + d, a);
      }
    } else {  // v
      const int vi = i - (nh + nkv) * per_head, kh = vi / (hd / 8), d = (vi % (hd / 8)) * 8;
      const int col = (nh + nkv) * hd + kh * hd + d;
      load8(row + col, a);
      if (bias)
#pragma unroll
        for (int k = 0; k < 8; k++) a[k] += bias[col + k];
      store8(v_cache + (((size_t)blk * nkv + kh) * block_size + slot) * hd + d, a);
    }
  }
}

// Any sizes: one element pair per thread step.
__global__ void __launch_bounds__(kRopeThreads)
    rope_kernel(bf16 *qkv, const float *bias, const int *positions, const int *token_seq,
                const int *block_indptr, const int *block_indices, const double *inv_freq, int nh,
                int nkv, int hd, int rot, int block_size, bf16 *k_cache, bf16 *v_cache) {
  extern __shared__ float cs[];  // cos [rot/2], sin [rot/2]
  const int t = blockIdx.x, half = rot / 2, width = (nh + 2 * nkv) * hd;
  const int pos = positions[t];
  rope_table(cs, pos, inv_freq, half);  // positions: uploaded before the step, no kernel writes them
  pdl_wait();
  pdl_launch_dependents();
  bf16 *row = qkv + (size_t)t * width;
  const int seq = token_seq[t];
  const int blk = block_indices[block_indptr[seq] + pos / block_size];
  const size_t slot = (size_t)pos % block_size;
  auto cache_at = [&](bf16 *cache, int kh) {
    return cache + (((size_t)blk * nkv + kh) * block_size + slot) * hd;
  };
  // q and k heads: per head, `half` rotation pairs plus hd - rot pass-through dims.
  const int per_head = half + (hd - rot);
  for (int i = threadIdx.x; i < (nh + nkv) * per_head; i += kRopeThreads) {
    const int head = i / per_head, j = i % per_head;
    const int base = head * hd;
    bf16 *dst = head < nh ? row + base : cache_at(k_cache, head - nh);
    if (j < half) {
      float x1 = to_f(row[base + j]), x2 = to_f(row[base + j + half]);
      if (bias) x1 += bias[base + j], x2 += bias[base + j + half];
      const float c = cs[j], s = cs[half + j];
      dst[j] = to_bf(x1 * c - x2 * s);
      dst[j + half] = to_bf(x2 * c + x1 * s);
    } else {
      const int d = rot + (j - half);
      float x = to_f(row[base + d]);
      if (bias) x += bias[base + d];
      dst[d] = to_bf(x);
    }
  }
  for (int i = threadIdx.x; i < nkv * hd; i += kRopeThreads) {
    const int kh = i / hd, d = i % hd, col = (nh + nkv) * hd + i;
    float x = to_f(row[col]);
    if (bias) x += bias[col];
    cache_at(v_cache, kh)[d] = to_bf(x);
  }
}

// plain: 8 outputs per thread when I % 8 == 0 (16-byte accesses), else 1.
template <int VEC>
__global__ void act_plain_kernel(const bf16 *in, const float *bias, bf16 *out, int T, int I, int kind) {
  const size_t n = (size_t)T * I / VEC;
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < n; v += (size_t)gridDim.x * blockDim.x) {
    const size_t e = v * VEC;
    const int i = (int)(e % I);
    float g[8];
    if (VEC == 8) load8(in + e, g);
    else g[0] = to_f(in[e]);
#pragma unroll
    for (int k = 0; k < VEC; k++) g[k] = activate(kind, bias ? g[k] + bias[i + k] : g[k]);
    if (VEC == 8) store8(out + e, g);
    else out[e] = to_bf(g[0]);
  }
}

// gated: in [T, 2I] with columns interleaved (gate_i, up_i) -> out [T, I].
__global__ void act_gated_kernel(const bf16 *in, const float *bias, bf16 *out, int T, int I, int kind) {
  const size_t n = (size_t)T * I;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
    const int i = (int)(e % I);
    const float2 gu = __bfloat1622float2(reinterpret_cast<const __nv_bfloat162 *>(in)[e]);
    const float g = bias ? gu.x + bias[2 * i] : gu.x, u = bias ? gu.y + bias[2 * i + 1] : gu.y;
    out[e] = to_bf(activate(kind, g) * u);
  }
}

__global__ void embed_kernel(const bf16 *embed, const float *pos_embed, const int *token_ids,
                             const int *positions, int H, int vocab_begin, int vocab_rows, float *h) {
  const int t = blockIdx.x;
  const int row = token_ids[t] - vocab_begin;
  const bf16 *e = row >= 0 && row < vocab_rows ? embed + (size_t)row * H : nullptr;
  const float *pe = pos_embed ? pos_embed + (size_t)positions[t] * H : nullptr;
  float *dst = h + (size_t)t * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = (e ? to_f(e[i]) : 0.f) + (pe ? pe[i] : 0.f);
}

__global__ void pos_kernel(const float *pos_embed, const int *positions, int H, float *h) {
  const float *pe = pos_embed + (size_t)positions[blockIdx.x] * H;
  float *dst = h + (size_t)blockIdx.x * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] += pe[i];
}

__global__ void bias_kernel(float *y, const float *bias, int N) {
  float *row = y + (size_t)blockIdx.x * N;
  for (int i = threadIdx.x; i < N; i += blockDim.x) row[i] += bias[i];
}

int grid_for(size_t n, int threads) {
  size_t blocks = (n + threads - 1) / threads;
  return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

}  // namespace

namespace {
int launch_norm(float *h, const int *rows, int R, int H, const float *add_a, const float *add_b,
                bool write_back, bool write_normed, NormOp op, const float *w, const float *b, float eps,
                bf16 *out, cudaStream_t stream, char *err) {
  if (R <= 0) return 0;
  if (H > kMaxNormCols) {
    snprintf(err, 512, "norm: hidden size %d > %d is not supported", H, kMaxNormCols);
    return FG_ERR_UNSUPPORTED;
  }
#define FGCU_NORM(PER) \
  launch_k(norm_kernel<PER>, dim3(R), dim3(kNormThreads), 0, stream, h, rows, H, add_a, add_b, write_back, \
           write_normed, (int)op, w, b, eps, out)
  const int per = (H + kNormThreads - 1) / kNormThreads;
  if (per <= 1) FGCU_NORM(1);
  else if (per <= 2) FGCU_NORM(2);
  else if (per <= 4) FGCU_NORM(4);
  else if (per <= 8) FGCU_NORM(8);
  else if (per <= 16) FGCU_NORM(16);
  else FGCU_NORM(32);
#undef FGCU_NORM
  FGCU_LAUNCHED("norm_kernel");
  return 0;
}
}  // namespace

int norm_rows(float *h, const int *rows, int R, int H, const float *add_a, const float *add_b,
              bool write_back, NormOp op, const float *w, const float *b, float eps, bf16 *out,
              cudaStream_t stream, char *err) {
  return launch_norm(h, rows, R, H, add_a, add_b, write_back, false, op, w, b, eps, out, stream, err);
}

int norm_rows_in_place(float *h, int R, int H, const float *add_a, NormOp op, const float *w, const float *b,
                       float eps, bf16 *out, cudaStream_t stream, char *err) {
  return launch_norm(h, nullptr, R, H, add_a, nullptr, true, true, op, w, b, eps, out, stream, err);
}

int add_pos_embed(const float *pos_embed, const int *positions, int T, int H, float *h, cudaStream_t stream,
                  char *err) {
  if (T <= 0) return 0;
  pos_kernel<<<T, 256, 0, stream>>>(pos_embed, positions, H, h);
  FGCU_LAUNCHED("pos_kernel");
  return 0;
}

int qkv_rope_kv_write(bf16 *qkv, const float *bias, const int *positions, const int *token_seq,
                      const int *block_indptr, const int *block_indices, const double *inv_freq,
                      int T, int nh, int nkv, int hd, int rot, int block_size, bf16 *k_cache,
                      bf16 *v_cache, cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  if (!inv_freq) rot = 0;
  if (rot % 16 == 0 && hd % 8 == 0) {
    // items (8 dims each) per token; up to 64 tokens, one block per 256 of them
    const int items = (nh + nkv) * (rot / 16 + (hd - rot) / 8) + nkv * (hd / 8);
    const int ys = T <= 64 ? ceil_div(items, kRopeThreads) : 1;
    launch_k(rope_kernel_vec, dim3(T, ys), dim3(kRopeThreads), rot * sizeof(float), stream, qkv, bias, positions,
             token_seq, block_indptr, block_indices, inv_freq, nh, nkv, hd, rot, block_size, k_cache, v_cache);
  } else {
    launch_k(rope_kernel, dim3(T), dim3(kRopeThreads), rot * sizeof(float), stream, qkv, bias, positions,
             token_seq, block_indptr, block_indices, inv_freq, nh, nkv, hd, rot, block_size, k_cache, v_cache);
  }
  FGCU_LAUNCHED("rope_kernel");
  return 0;
}

int activation(const bf16 *in, const float *bias, bf16 *out, int T, int I, ActKind kind,
               cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  const size_t n = (size_t)T * I;
  if (kind <= kGatedGeluTanh) act_gated_kernel<<<grid_for(n, 256), 256, 0, stream>>>(in, bias, out, T, I, kind);
  else if (I % 8 == 0) act_plain_kernel<8><<<grid_for(n / 8, 256), 256, 0, stream>>>(in, bias, out, T, I, kind);
  else act_plain_kernel<1><<<grid_for(n, 256), 256, 0, stream>>>(in, bias, out, T, I, kind);
  FGCU_LAUNCHED("act_kernel");
  return 0;
}

int embed_tokens(const bf16 *embed, const float *pos_embed, const int *token_ids,
                 const int *positions, int T, int H, int vocab_begin, int vocab_rows, float *h,
                 cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  embed_kernel<<<T, 256, 0, stream>>>(embed, pos_embed, token_ids, positions, H, vocab_begin, vocab_rows, h);
  FGCU_LAUNCHED("embed_kernel");
  return 0;
}

int add_bias_rows(float *y, const float *bias, int R, int N, cudaStream_t stream, char *err) {
  if (R <= 0) return 0;
  bias_kernel<<<R, 256, 0, stream>>>(y, bias, N);
  FGCU_LAUNCHED("bias_kernel");
  return 0;
}

}  // namespace fgcu
