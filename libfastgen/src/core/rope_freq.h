// RoPE frequencies for a spec: the one place the scaling rules (linear, llama3, yarn, dynamic NTK,
// longrope) live. Both backends rotate with these tables; only how they apply them differs.
#pragma once
#include <vector>

#include "core/spec.h"

namespace fg {

struct RopeFreqs {
  std::vector<double> inv_freq;  // [rotary_dim / 2], after scaling (full-attention layers)
  double attention_factor = 1;   // cos and sin are multiplied by it (yarn, longrope)
  // Sliding layers' frequencies when spec.sliding_rope_theta > 0 (plain RoPE, factor 1);
  // empty: sliding layers use inv_freq and attention_factor like the others.
  std::vector<double> sliding_inv_freq;
};

// Empty tables for learned positions.
RopeFreqs rope_freqs(const ModelSpec &spec);

}  // namespace fg
