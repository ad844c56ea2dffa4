// Paged attention over a ragged batch (prompt chunks and decode tokens mixed).
//
//   KV cache of one layer:  k, v: [num_blocks, block_size, num_kv_heads, head_dim]
//   token at position p of sequence s lives in block block_indices[block_indptr[s] + p / block_size],
//   slot p % block_size.
#pragma once
#include <cstdint>

namespace fg {
namespace cpu {

struct PagedBatch {
  int64_t num_tokens;
  const int32_t *positions;      // [num_tokens]
  const int32_t *token_seq;      // [num_tokens] sequence index of each token
  const int32_t *block_indptr;   // [num_seqs + 1]
  const int32_t *block_indices;  // [block_indptr[num_seqs]]
  int64_t block_size;
};

// Writes rows: [num_tokens, row] into the cache slots of their positions (cache:
// [num_blocks, block_size, row]).
void write_cache_rows(const PagedBatch &b, const float *rows, float *cache, int64_t row);

// Writes k, v: [num_tokens, num_kv_heads, head_dim] into the cache slots of their positions.
void write_kv_cache(const PagedBatch &b, const float *k, const float *v, float *k_cache,
                    float *v_cache, int64_t num_kv_heads, int64_t head_dim);

// out: [num_tokens, num_heads, v_dim] = softmax(cap(q k^T * scale)) v, where the token at
// position p attends to positions j of its own sequence with j <= p and (window == 0 or
// p - j < window). cap(s) = softcap * tanh(s / softcap) when softcap > 0 (Gemma 2), else s.
// q: [num_tokens, num_heads, head_dim]; KV for every such j must already be in the cache.
// v_dim (0 = head_dim) <= head_dim: the first v_dim of each value row are read (MLA attends in
// latent space with k_cache = v_cache = its [latent | k_pe] rows and v_dim = the latent width).
void paged_attention(const PagedBatch &b, const float *q, const float *k_cache,
                     const float *v_cache, float *out, int64_t num_heads, int64_t num_kv_heads,
                     int64_t head_dim, int64_t window, float scale, float softcap,
                     int64_t v_dim = 0);

}  // namespace cpu
}  // namespace fg
