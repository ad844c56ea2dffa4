// The generic decoder's forward pass on the CPU, fp32, over one ragged batch.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rope_freq.h"
#include "core/spec.h"
#include "core/weights.h"
#include "cpu/attention.h"

namespace fg {
namespace cpu {

struct KvLayer {
  float *k, *v;  // [num_blocks, block_size, num_kv_heads, head_dim] each; MLA: k = v = the latent rows
  // FP8 KV cache (kv_dtype FG_F8_E4M3): K and V are stored as e4m3(x / scale) * scale, the
  // values an E4M3 cache with these scales gives back (core/fp8.h e4m3_round).
  bool fp8 = false;
  float k_scale = 1, v_scale = 1;
};

struct ForwardBatch {
  PagedBatch paged;              // positions, token -> sequence, block tables
  const int32_t *token_ids;      // [num_tokens]
  const int32_t *logit_tokens;   // [num_logit_rows] tokens whose logits are wanted
  int64_t num_logit_rows;
};

// Runs every layer (writing this batch's K/V into the cache), then the final norm and LM head
// for the wanted tokens only. logits: [num_logit_rows, vocab].
void forward(const ModelSpec &spec, const ModelWeights &w, const RopeFreqs &rope,
             const std::vector<KvLayer> &kv, const ForwardBatch &batch, float *logits);

}  // namespace cpu
}  // namespace fg
