// Token embedding and learned positions on the device. CPU twin: cpu/embed.cpp.
// Host functions launch on `stream` and return 0 or an fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

// h[t, :] = embed[token_ids[t] - vocab_begin, :] * scale (+ pos_embed[positions[t], :]), fp32 [T, H].
// embed holds vocab rows [vocab_begin, vocab_begin + vocab_rows) (a tensor-parallel shard); a
// token outside them contributes zeros, so the sum over ranks is the whole lookup.
int embed_tokens(const bf16 *embed, float scale, const float *pos_embed, const int *token_ids,
                 const int *positions, int T, int H, int vocab_begin, int vocab_rows, float *h,
                 cudaStream_t stream, char *err);

// h[t, :] += pos_embed[positions[t], :] (learned positions after embed_proj_in).
int add_pos_embed(const float *pos_embed, const int *positions, int T, int H, float *h, cudaStream_t stream,
                  char *err);

}  // namespace fgcu
