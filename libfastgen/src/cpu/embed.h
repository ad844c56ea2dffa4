// Token embedding and learned positions on the CPU, fp32: the twin of cuda/embed.cu.
#pragma once
#include <cstdint>

namespace fg {
namespace cpu {

// rows [T, D] = table[ids[t]] * scale (Gemma's sqrt(hidden): one fp32 product per element).
// table: [vocab, D].
void embed_rows(const float *table, const int32_t *ids, int64_t T, int64_t D, float scale, float *rows);

// h [T, H] += pos_embed[positions[t]]; pos_embed: [max_positions, H].
void add_positions(const float *pos_embed, const int32_t *positions, int64_t T, int64_t H, float *h);

}  // namespace cpu
}  // namespace fg
