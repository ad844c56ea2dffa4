// Flash-decoding's merge of a narrow tile's key splits. Each split's CTA leaves, per row (token,
// q head), its normalized partial O_s and lse_s = log2 of its softmax denominator (plus its max)
// in part_o / part_lse; the merge is
//   out = sum_s 2^(lse_s - M) O_s / sum_s 2^(lse_s - M),    M = max_s lse_s.
// With AttnArgs::split_done (one counter per narrow tile and KV head, zero between passes;
// FASTGEN_ATTN_MERGE_IN_KERNEL) the last CTA of a (tile, KV head) to finish merges in the same
// kernel and sets its counter back to zero; without it attn_combine_kernel runs after the
// attention kernel. Both run merge_splits, so the two give the same bits (test/gpu/pdl.test.ts,
// test/cudaEmu/attention.test.ts).
#pragma once
#include "cuda/attention.cuh"

namespace fgcu {

// By every thread of the block: rows of `tile` in KV head kvh (blockDim.x threads).
__device__ __forceinline__ void merge_splits(const AttnArgs &p, const AttnTile &tile, int kvh) {
  const int G = p.num_heads / p.num_kv_heads, HD = p.head_dim;
  const int tok0 = p.cu_seqlens[tile.seq], rows = tile.row_end - tile.row_begin;
  for (int i = threadIdx.x; i < rows * HD; i += blockDim.x) {
    const int r = tile.row_begin + i / HD, d = i % HD;
    const int t = tok0 + r / G, head = kvh * G + r % G;
    float M = -INFINITY;
    for (int s = 0; s < p.splits; s++)
      M = fmaxf(M, __ldcg(p.part_lse + ((size_t)s * p.num_tokens + t) * p.num_heads + head));
    float W = 0.f, O = 0.f;
    if (M != -INFINITY)
      for (int s = 0; s < p.splits; s++) {
        const size_t idx = ((size_t)s * p.num_tokens + t) * p.num_heads + head;
        const float f = exp2f(__ldcg(p.part_lse + idx) - M);
        W += f;
        O += f * __ldcg(p.part_o + idx * HD + d);
      }
    p.out[(size_t)t * p.out_stride + head * HD + d] = to_bf(W > 0.f ? O / W : 0.f);
  }
}

// By every thread of a split's CTA once its part_o / part_lse are written: true in the whole
// block of the last CTA of narrow tile tile_id, KV head kvh, to finish (whose threads then see
// every split's writes), false elsewhere. Needs p.split_done.
__device__ __forceinline__ bool last_split(const AttnArgs &p, int tile_id, int kvh) {
  __threadfence();  // this thread's part_o / part_lse, visible before the count says so
  __syncthreads();
  bool mine = false;  // thread 0: this CTA's count was the last one
  if (threadIdx.x == 0) {
    int *c = p.split_done + (size_t)tile_id * p.num_kv_heads + kvh;
    mine = atomicAdd(c, 1) == p.splits - 1;
    if (mine) *c = 0;  // every split has counted: the next pass starts from zero
  }
  const bool last = __syncthreads_or(mine) != 0;
  if (last) __threadfence();
  return last;
}

}  // namespace fgcu
