// Paged flash attention over a ragged batch (prompt chunks and decode tokens mixed), the CUDA
// twin of cpu/attention.cpp: the token at position p of sequence s attends to positions j of s
// with j <= p and (window == 0 or p - j < window); scores are scale * q.k, soft-capped first
// when softcap > 0 (before the mask and the softmax).
//
// KV cache of one layer (CUDA layout; the caller sees only block ids):
//   k, v: [num_blocks, num_kv_heads, block_size, head_dim] bf16, or E4M3 bytes (kv_fp8: each
//         stored value times k_scale / v_scale is the key / value; cuda/kv_fp8.cuh)
//   position p of sequence s: block block_indices[block_indptr[s] + p / block_size], slot p % block_size
//
// Work: rows = (token, q head of one kv group) pairs of one sequence, cut into tiles:
//   wide tiles   (128 rows, 4 warps x 32 rows, 64-key tiles)         prompt chunks
//                head_dim 256: each as two CTAs of 64 rows (4 warps x 16 rows);
//                FASTGEN_ATTN_BM=64: 64-row tiles and CTAs throughout (A/B timing)
//   narrow tiles (16 rows, 4 warps x 16 keys of each 64-key tile)    decode / short chunks
// Narrow tiles may also split their key range over several CTAs (flash-decoding); a combine
// kernel, or the last CTA of a tile to finish, merges the partial results by their log-sum-exp
// (attn_splits.cuh).
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

// A tile: rows [row_begin, row_end) of sequence seq; row r = (token r / group, head r % group).
struct AttnTile {
  int seq, row_begin, row_end;
};

struct AttnArgs {
  const bf16 *q;  // q of token t, head h: q + t * q_stride + h * head_dim
  int q_stride;
  const bf16 *k_cache, *v_cache;  // this layer's pool (kv_fp8: E4M3 bytes, read via kv_ptr<e4m3>)
  bf16 *out;                      // out + t * out_stride + h * head_dim
  int out_stride;
  const int *cu_seqlens, *context_lens, *block_indptr, *block_indices;  // device, per batch
  const int *token_seq;           // [num_tokens] sequence of each token (simple kernel)
  const AttnTile *wide, *narrow;  // device
  int num_wide, num_narrow;
  int splits;                     // key splits of narrow tiles (1 = none)
  float *part_o, *part_lse;       // [splits, T, num_heads, head_dim], [splits, T, num_heads]
  int *split_done;                // [num_narrow, num_kv_heads] zeros, or null (attn_splits.cuh)
  int num_tokens, num_heads, num_kv_heads, head_dim, block_size, window;
  float scale;                    // softmax scale (1/sqrt(head_dim) unless the spec sets one)
  float softcap;                  // > 0: scores = softcap * tanh(scale * q.k / softcap) (Gemma 2)
  // The cache's element type: false bf16; true FP8 E4M3 (--kv-cache-dtype fp8), k = stored *
  // k_scale, v = stored * v_scale. A kernel that reads bf16 caches only must refuse kv_fp8 and
  // leave such steps to paged_attention's own kernels, which take both.
  bool kv_fp8;
  float k_scale, v_scale;
  int wide_kernel;                // wide tiles: 0 by device and FASTGEN_ATTN_HOPPER, 1 mma.sync,
                                  // 2 Hopper, 3 Hopper serial (attention_hopper.cuh; test hook)
};

// Host: cuts each sequence's rows into tiles. tiles must hold num_tiles_bound(...) entries each.
// A sequence with at most 16 rows gets one narrow tile, longer ones wide tiles of
// attn_wide_rows() rows (the last one of a sequence may be shorter).
void attn_make_tiles(int num_seqs, const int *cu_seqlens, int group, AttnTile *wide, int *num_wide,
                     AttnTile *narrow, int *num_narrow);
int attn_num_tiles_bound(int num_tokens, int num_seqs, int group);
// Rows of a wide tile: 128, or 64 under FASTGEN_ATTN_BM=64 (A/B timing of the 64-row kernel).
// Read once per process, so the host cut and the launch always agree.
int attn_wide_rows();
// Host: whether split narrow tiles are merged in the attention kernel, by each tile's last CTA
// (FASTGEN_ATTN_MERGE_IN_KERNEL: the engine then passes AttnArgs::split_done) rather than by
// attn_combine_kernel; read once.
bool attn_merge_in_kernel();
// Host: key splits for the narrow tiles, given the longest context among them.
int attn_choose_splits(int num_narrow, int num_kv_heads, int max_context, int num_sms);

// Tensor-core kernels for head_dim in {16, 32, 64, 80, 96, 128, 256}; any other head_dim up to
// 256 (or FASTGEN_ATTN=simple, or a scale <= 0) runs a one-warp-per-row fp32 kernel. Each reads
// a bf16 or an FP8 cache (kv_fp8).
int paged_attention(const AttnArgs &a, cudaStream_t stream, char *err);

}  // namespace fgcu
