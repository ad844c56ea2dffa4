// Multi-head latent attention (DeepSeek-V2/V3) on the CPU, in the absorbed form: attention runs in
// the latent space, so the cache holds one [latent | k_pe] row per token for every head.
//
//   x [T, H] ─ q (or q_b(q_a_norm(q_a x))) ─▶ q [T, heads, nope | rope]
//            ─ kv_a ─▶ [T, kv_lora_rank | rope] ─ kv_a_norm on the latent, RoPE on k_pe ─▶ cache row
//   kv_b = per head [W_uk: nope rows | W_uv: v rows] x kv_lora_rank
//   score(t, h, j) = (q_nope W_uk[h] . c_j  +  q_pe . k_pe_j) * scale     (= q . k of transformers'
//                    per-head k = [W_uk[h] c_j | k_pe_j], up to fp32 rounding)
//   o[t, h] = W_uv[h] (sum_j p_j c_j),   residual += o_proj(o)
//
// Per token and head that is one kv_lora_rank-wide dot per cached position instead of
// up-projecting every cached latent to heads x (nope + v) each pass.
#pragma once
#include <cstdint>

#include "core/spec.h"
#include "core/weights.h"
#include "cpu/attention.h"

namespace fg {
namespace cpu {

// residual: [T, hidden] += o_proj(MLA(x)), writing this batch's latent rows into cache
// ([num_blocks, block_size, kv_lora_rank + qk_rope_head_dim]). x: [T, hidden] (the attention
// norm's output); cos, sin: [T, qk_rope_head_dim / 2]; window 0 = every earlier position.
// fp8_scale > 0: an FP8 KV cache, whose rows are rounded through E4M3 at that scale.
void mla_attention_add(const ModelSpec &spec, const LayerWeights &w, float *cache, const PagedBatch &b,
                       const float *cos, const float *sin, int64_t window, const float *x,
                       float *residual, float fp8_scale = 0);

}  // namespace cpu
}  // namespace fg
