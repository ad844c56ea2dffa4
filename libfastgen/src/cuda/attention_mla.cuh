// Paged latent attention (DeepSeek's multi-head latent attention in the absorbed form, mla.cuh):
// the CUDA twin of cpu/attention.cpp's paged_attention called as cpu/mla.cpp calls it, with
// k_cache = v_cache = the latent rows and v_dim = the latent width. The token at position p of
// sequence s attends to positions j of s with j <= p and (window == 0 or p - j < window); scores
// are scale * q.k, soft-capped first when softcap > 0.
//
// Cache of one layer (one row per token, shared by every head; the caller sees block ids):
//   [num_blocks, block_size, D] bf16, D = latent + rope: [latent c | rotated k_pe]; or (kv_fp8)
//   E4M3 bytes, a stored value times kv_scale being the row's (cuda/kv_fp8.cuh)
//   position p of sequence s: block block_indices[block_indptr[s] + p / block_size], slot p % block_size
//   q   [T, num_heads, D] bf16: [q_nope W_uk | rotated q_pe] per head
//   out [T, num_heads, latent] bf16 = softmax(scores) . c   (keys: whole rows; values: the latent part)
//
// Work: one CTA of 4 warps per (token, group of up to 16 heads, key split). Key tiles of 32 rows
// come into shared memory with cp.async, double buffered, and serve every head of the group as
// keys and values. Each warp owns up to 4 heads: lane j scores key j against them (fp32, q held
// in shared memory as fp32), then each lane accumulates 2 of every 64 latent columns over the
// tile's keys. Decode-sized steps split their keys over several CTAs (flash-decoding) and a
// combine kernel merges the parts by their log-sum-exp. Plain fp32 FMA, no tensor cores: the
// correct-first kernel. FASTGEN_MLA_KERNEL=mma runs the tensor-core one instead
// (attention_mla_mma.cuh: same arguments, same split layout and combine).
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

struct MlaAttnArgs {
  const bf16 *q;                  // [T, num_heads, latent + rope]
  const bf16 *cache;              // this layer's rows [num_blocks, block_size, latent + rope] (kv_fp8: bytes)
  bf16 *out;                      // [T, num_heads, latent]
  const int *cu_seqlens, *context_lens, *block_indptr, *block_indices;  // device, per batch
  const int *token_seq;           // [T] sequence of each token
  int num_tokens, num_heads, latent, rope, block_size, window;
  float scale;                    // softmax scale
  float softcap;                  // > 0: scores = softcap * tanh(scale * q.k / softcap)
  int splits;                     // key splits (1 = none)
  float *part_o, *part_lse;       // splits > 1: [splits, T, num_heads, latent], [splits, T, num_heads]
  bool kv_fp8;                    // the cache holds E4M3 of row / kv_scale (the layer's K scale)
  float kv_scale;
};

// The keys split `split` of p.splits scores for query positions first..last of one sequence (one
// kernel block): from the window's start for `first` (or 0) to `last`, cut into p.splits chunks
// of whole tiles of `tile` keys; keys s_lo..s_hi, n_tiles tiles (0: an empty split).
struct MlaKeys {
  int s_lo, s_hi, n_tiles;
};
__device__ __forceinline__ MlaKeys mla_split_keys(const MlaAttnArgs &p, int first, int last, int split, int tile) {
  const int lo = p.window > 0 ? max(0, first - p.window + 1) : 0;
  const int chunk = ((last - lo + 1 + p.splits - 1) / p.splits + tile - 1) / tile * tile;
  MlaKeys k;
  k.s_lo = lo + split * chunk, k.s_hi = min(last, k.s_lo + chunk - 1);
  k.n_tiles = k.s_hi >= k.s_lo ? (k.s_hi - k.s_lo) / tile + 1 : 0;
  return k;
}

// 0, or FG_ERR_UNSUPPORTED with a message when the kernel is not built for these widths:
// latent <= 512 and even, latent + rope a multiple of 8 (16-byte rows), rope <= 256.
int mla_attention_check(int latent, int rope, char *err);

// Key splits for a step of num_tokens tokens whose longest context is max_context:
// FASTGEN_ATTN_SPLITS when set (at most 64), else enough CTAs for about two waves, at least 64
// keys a split.
int mla_choose_splits(int num_tokens, int num_heads, int max_context, int num_sms);

int mla_attention(const MlaAttnArgs &a, cudaStream_t stream, char *err);

}  // namespace fgcu
