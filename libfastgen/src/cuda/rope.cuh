// RoPE + KV-cache write on the device. CPU twins: cpu/rope.cpp, cpu/attention.cpp
// (write_kv_cache). Launches on `stream`; returns 0 or an fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

// One layer's q/k/v post-processing after the qkv GEMM.
//   qkv: [T, (nh + 2 nkv) * hd] bf16, in place: q and k heads get + bias, then (qk_norm) a
//   per-head RMSNorm times q_norm / k_norm, then RoPE on their first rot dims (rotate_half
//   pairing i <-> i + rot/2, or interleaved 2i <-> 2i + 1; angle = position * inv_freq[i] in
//   double, cos and sin times attn_factor); k and v (+ bias) are then written to their cache
//   slots. The q part stays in qkv for attention.
//   cache: [num_blocks, nkv, block_size, hd] bf16, or (kv_fp8) E4M3 bytes e4m3(k / k_scale),
//   e4m3(v / v_scale) of the fp32 values (cuda/kv_fp8.cuh)
struct RopeArgs {
  bf16 *qkv;
  const float *bias;                    // [(nh + 2 nkv) * hd] or null
  const int *positions, *token_seq, *block_indptr, *block_indices;  // device, per step
  const double *inv_freq;               // [rot / 2] device; null or rot == 0: no rotation
  float attn_factor;                    // 1 unless yarn / longrope
  const float *q_norm, *k_norm;         // [hd] each, (offset + w) already; null: no qk_norm
  float eps;                            // of the qk norms
  int nh, nkv, hd, rot, block_size;
  int interleaved;                      // pairs (2i, 2i + 1) (GPT-J, DeepSeek), else (i, i + rot / 2)
  bf16 *k_cache, *v_cache;              // this layer's pool (kv_fp8: E4M3 bytes)
  bool kv_fp8;
  float k_scale, v_scale;               // kv_fp8: the layer's scales (> 0)
  // Decode: bytes of the o projection's weights pulled into L2 meanwhile, so that the o GEMV after
  // attention reads them from there (RoPE and attention leave DRAM idle; FASTGEN_PREFETCH_O).
  const void *prefetch;                 // null: none
  size_t prefetch_bytes;                // a multiple of 16
};

// cos/sin of position * inv_freq for one token into cs[0..half) / cs[half..2 half), by the
// block's threads (then a barrier): the angle and its reduction to [-pi, pi] in double
// (positions reach 1e6), the sine and cosine in float, both times the attention factor (yarn,
// longrope; it scales q.k by its square, as transformers does). Shared with cuda/mla.cu.
__device__ __forceinline__ void rope_table(float *cs, int pos, const double *inv_freq, int half,
                                           float factor) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    double a = (double)pos * inv_freq[i];
    a -= 6.283185307179586476925 * rint(a * 0.159154943091895335769);
    float sn, cn;
    sincosf((float)a, &sn, &cn);
    cs[i] = cn * factor;
    cs[half + i] = sn * factor;
  }
  __syncthreads();
}

int qkv_rope_kv_write(const RopeArgs &a, int T, cudaStream_t stream, char *err);

}  // namespace fgcu
