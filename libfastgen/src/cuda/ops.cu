// Fused elementwise / row kernels of the CUDA backend (see ops.cuh).
#include "cuda/ops.cuh"

namespace fgcu {
namespace {

constexpr int kNormThreads = 256;
constexpr int kMaxNormCols = 16384;  // row cached in shared memory: 64 KB

// One block per row; the row is staged in shared memory so the mean is exact before the
// variance pass (LayerNorm inputs can carry a large offset).
__global__ void __launch_bounds__(kNormThreads)
    norm_kernel(float *h, const int *rows, int H, const float *add_a, const float *add_b,
                bool write_back, int op, const float *w, const float *b, float eps, bf16 *out) {
  extern __shared__ float row[];
  __shared__ float scratch[32];
  float *src = h + (size_t)(rows ? rows[blockIdx.x] : blockIdx.x) * H;
  float sum = 0.f;
  for (int i = threadIdx.x; i < H; i += kNormThreads) {
    float v = src[i];
    if (add_a) v += add_a[i];
    if (add_b) v += add_b[i];
    if (write_back && (add_a || add_b)) src[i] = v;
    row[i] = v;
    sum += v;
  }
  bf16 *o = out + (size_t)blockIdx.x * H;
  if (op == kNormNone) {
    __syncthreads();
    for (int i = threadIdx.x; i < H; i += kNormThreads) o[i] = to_bf(row[i]);
    return;
  }
  float mean = 0.f;
  if (op == kNormLayer) mean = block_sum(sum, scratch) / H;
  float ss = 0.f;
  for (int i = threadIdx.x; i < H; i += kNormThreads) {
    const float d = row[i] - mean;
    ss += d * d;
  }
  const float scale = rsqrtf(block_sum(ss, scratch) / H + eps);
  for (int i = threadIdx.x; i < H; i += kNormThreads) {
    float v = (row[i] - mean) * scale * w[i];
    if (b) v += b[i];
    o[i] = to_bf(v);
  }
}

constexpr int kRopeThreads = 128;

__global__ void __launch_bounds__(kRopeThreads)
    rope_kernel(bf16 *qkv, const float *bias, const int *positions, const int *token_seq,
                const int *block_indptr, const int *block_indices, const double *inv_freq, int nh,
                int nkv, int hd, int rot, int block_size, bf16 *k_cache, bf16 *v_cache) {
  extern __shared__ float cs[];  // cos [rot/2], sin [rot/2]
  const int t = blockIdx.x, half = rot / 2, width = (nh + 2 * nkv) * hd;
  const int pos = positions[t];
  for (int i = threadIdx.x; i < half; i += kRopeThreads) {
    double s, c;
    sincos((double)pos * inv_freq[i], &s, &c);
    cs[i] = (float)c;
    cs[half + i] = (float)s;
  }
  __syncthreads();
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

__device__ __forceinline__ float silu(float x) { return x / (1.f + __expf(-x)); }
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float gelu_tanh(float x) {
  const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x / (1.f + __expf(-2.f * u));
}
__device__ __forceinline__ float act(int kind, float x) {
  switch (kind) {
    case kGatedSilu: return silu(x);
    case kGatedGelu: case kGelu: return gelu(x);
    case kGatedGeluTanh: case kGeluTanh: return gelu_tanh(x);
    default: return x > 0.f ? x : 0.f;
  }
}

// 8 outputs per thread when I % 8 == 0 (16-byte accesses), else 1.
template <int VEC>
__global__ void act_kernel(const bf16 *in, const float *bias, bf16 *out, int T, int I, int kind) {
  const bool gated = kind <= kGatedGeluTanh;
  const int in_w = gated ? 2 * I : I;
  const size_t n = (size_t)T * I / VEC;
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < n; v += (size_t)gridDim.x * blockDim.x) {
    const size_t e = v * VEC;
    const int t = (int)(e / I), i = (int)(e % I);
    float g[VEC], u[VEC], r[VEC];
    const bf16 *src = in + (size_t)t * in_w + i;
    if (VEC == 8) load8(src, g);
    else g[0] = to_f(src[0]);
    if (gated) {
      if (VEC == 8) load8(src + I, u);
      else u[0] = to_f(src[I]);
    }
#pragma unroll
    for (int k = 0; k < VEC; k++) {
      float a = g[k];
      if (bias) a += bias[i + k];
      if (gated) {
        float b = u[k];
        if (bias) b += bias[I + i + k];
        r[k] = act(kind, a) * b;
      } else {
        r[k] = act(kind, a);
      }
    }
    bf16 *dst = out + e;
    if (VEC == 8) store8(dst, r);
    else dst[0] = to_bf(r[0]);
  }
}

__global__ void embed_kernel(const bf16 *embed, const float *pos_embed, const int *token_ids,
                             const int *positions, int H, float *h) {
  const int t = blockIdx.x;
  const bf16 *e = embed + (size_t)token_ids[t] * H;
  const float *pe = pos_embed ? pos_embed + (size_t)positions[t] * H : nullptr;
  float *dst = h + (size_t)t * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = to_f(e[i]) + (pe ? pe[i] : 0.f);
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

int norm_rows(float *h, const int *rows, int R, int H, const float *add_a, const float *add_b,
              bool write_back, NormOp op, const float *w, const float *b, float eps, bf16 *out,
              cudaStream_t stream, char *err) {
  if (R <= 0) return 0;
  if (H > kMaxNormCols) {
    snprintf(err, 512, "norm: hidden size %d > %d is not supported", H, kMaxNormCols);
    return FG_ERR_UNSUPPORTED;
  }
  static bool configured = false;
  if (!configured) {
    FGCU_TRY(cudaFuncSetAttribute(norm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  kMaxNormCols * 4));
    configured = true;
  }
  norm_kernel<<<R, kNormThreads, H * sizeof(float), stream>>>(h, rows, H, add_a, add_b, write_back,
                                                              op, w, b, eps, out);
  FGCU_LAUNCHED("norm_kernel");
  return 0;
}

int qkv_rope_kv_write(bf16 *qkv, const float *bias, const int *positions, const int *token_seq,
                      const int *block_indptr, const int *block_indices, const double *inv_freq,
                      int T, int nh, int nkv, int hd, int rot, int block_size, bf16 *k_cache,
                      bf16 *v_cache, cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  if (!inv_freq) rot = 0;
  rope_kernel<<<T, kRopeThreads, rot * sizeof(float), stream>>>(
      qkv, bias, positions, token_seq, block_indptr, block_indices, inv_freq, nh, nkv, hd, rot,
      block_size, k_cache, v_cache);
  FGCU_LAUNCHED("rope_kernel");
  return 0;
}

int activation(const bf16 *in, const float *bias, bf16 *out, int T, int I, ActKind kind,
               cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  const size_t n = (size_t)T * I;
  if (I % 8 == 0) act_kernel<8><<<grid_for(n / 8, 256), 256, 0, stream>>>(in, bias, out, T, I, kind);
  else act_kernel<1><<<grid_for(n, 256), 256, 0, stream>>>(in, bias, out, T, I, kind);
  FGCU_LAUNCHED("act_kernel");
  return 0;
}

int embed_tokens(const bf16 *embed, const float *pos_embed, const int *token_ids,
                 const int *positions, int T, int H, float *h, cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  embed_kernel<<<T, 256, 0, stream>>>(embed, pos_embed, token_ids, positions, H, h);
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
