// Rotary position embedding, transformers' "rotate_half" convention: within the first
// rotary_dim dims of a head, dim i pairs with dim i + rotary_dim/2 (not interleaved); the rest
// of the head passes through.
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

// x: [num_tokens, num_heads, head_dim], rotated in place.
void rope_apply(float *x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                int64_t rotary_dim, const float *cos, const float *sin);

}  // namespace cpu
}  // namespace fg
