// Mixture-of-experts MLP (Mixtral): route each token to its top-k experts, run every expert
// once over its tokens gathered contiguously, and add the routing-weighted outputs back.
//
//   x: [T, hidden] ─ router ─▶ logits [T, E] ─ top-k ─▶ (expert, weight) per slot t*k + j
//   scatter:  slots grouped by expert   | e0: t0.0 t3.1 | e1: t0.1 t1.0 | e2: ... |
//             expert_offsets            0               2               4
//   per expert e: rows [offsets[e], offsets[e+1]) of xs = x[slot / k] ─ mlp ─▶ same rows of ys
//   gather:   residual[t] += sum_j weight[t, j] * ys[row of slot t*k + j]   (j = 0..k-1 in order)
#pragma once
#include <cstdint>
#include <vector>

#include "core/spec.h"
#include "core/weights.h"

namespace fg {
namespace cpu {

struct MoeRouting {
  std::vector<int32_t> expert_ids;      // [T, k] best first
  std::vector<float> weights;           // [T, k] renormalized to sum 1 per token
  std::vector<int32_t> expert_offsets;  // [E + 1]
  std::vector<int32_t> token_slots;     // [T * k] slots t*k + j grouped by expert, token order
};

// router_logits: [T, E]. Softmax, top-k (ties: lower expert id first), Mixtral's
// renormalization of the k weights, then the scatter lists.
MoeRouting moe_route(const float *router_logits, int64_t num_tokens, int64_t num_experts,
                     int64_t top_k);

// residual: [T, hidden] += MoE(x), x: [T, hidden]; w.router and w.experts must be set.
void moe_add(const ModelSpec &spec, const LayerWeights &w, const float *x, float *residual,
             int64_t num_tokens);

}  // namespace cpu
}  // namespace fg
