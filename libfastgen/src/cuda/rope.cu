// Bias + RoPE on q and k, fused with the KV-cache write (see rope.cuh).
#include "cuda/rope.cuh"

namespace fgcu {
namespace {

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

}  // namespace

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

}  // namespace fgcu
