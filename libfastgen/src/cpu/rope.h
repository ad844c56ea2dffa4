// Rotary position embedding. Within rotary_dim dims of a head, transformers' "rotate_half"
// convention pairs dim i with dim i + rotary_dim/2; the interleaved one (GPT-J, DeepSeek's complex
// form) pairs 2i with 2i + 1. Pair i turns by position * inv_freq[i] either way; the rest of the
// head passes through.
#pragma once
#include <cstdint>
#include <vector>

#include "core/spec.h"

namespace fg {
namespace cpu {

// cos, sin: [num_tokens, rotary_dim / 2] for the given positions (angles in double), both
// multiplied by attention_factor (yarn, longrope: transformers' cos * attention_scaling).
void rope_tables(const std::vector<double> &inv_freq, double attention_factor,
                 const int32_t *positions, int64_t num_tokens, std::vector<float> &cos,
                 std::vector<float> &sin);

// x: [num_tokens, num_heads, head_dim], dims [offset, offset + rotary_dim) of each head rotated
// in place (offset: MLA's rope part follows the nope part of a q head and the latent of a row).
void rope_apply(float *x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                int64_t rotary_dim, const float *cos, const float *sin, bool interleaved = false,
                int64_t offset = 0);

}  // namespace cpu
}  // namespace fg
