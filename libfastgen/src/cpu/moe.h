// Mixture-of-experts MLP (Mixtral, Qwen2/3-MoE, DeepSeek): route each token to its top-k experts,
// run every expert once over its tokens gathered contiguously, and add the routing-weighted
// outputs back; then the shared expert, when the spec has one, over every token.
//
//   x: [T, hidden] ─ router ─▶ logits [T, E] ─ top-k ─▶ (expert, weight) per slot t*k + j
//   scatter:  slots grouped by expert   | e0: t0.0 t3.1 | e1: t0.1 t1.0 | e2: ... |
//             expert_offsets            0               2               4
//   per expert e: rows [offsets[e], offsets[e+1]) of xs = x[slot / k] ─ mlp ─▶ same rows of ys
//   gather:   residual[t] += sum_j weight[t, j] * ys[row of slot t*k + j]   (j = 0..k-1 in order)
//   shared:   residual[t] += sigmoid(x[t] . shared_expert_gate) * shared_mlp(x[t])   (gate optional)
#pragma once
#include <cstdint>
#include <vector>

#include "core/spec.h"
#include "core/weights.h"

namespace fg {
namespace cpu {

struct MoeRouting {
  std::vector<int32_t> expert_ids;      // [T, k] best first
  std::vector<float> weights;           // [T, k] softmax probabilities (renormalized: sum 1)
  std::vector<int32_t> expert_offsets;  // [E + 1]
  std::vector<int32_t> token_slots;     // [T * k] slots t*k + j grouped by expert, token order
};

// router_logits: [T, E]. Softmax over all E, top-k (ties: lower expert id first), then with
// renormalize the k weights rescaled to sum 1 (Mixtral, Qwen3-MoE), without it the k
// probabilities as they are (Qwen2-MoE's norm_topk_prob false); then times scale (DeepSeek's
// routed_scaling_factor); then the scatter lists. num_groups > 1 (DeepSeek's
// group_limited_greedy): the E experts form num_groups consecutive groups, ranked by their best
// probability (ties: lower group first), and the top-k is taken within the best topk_groups.
MoeRouting moe_route(const float *router_logits, int64_t num_tokens, int64_t num_experts,
                     int64_t top_k, bool renormalize, int64_t num_groups = 1,
                     int64_t topk_groups = 1, double scale = 1);

// g [T] = sigmoid(x[t] . gate): the shared expert's gate (shared_expert_gate), x: [T, H], gate: [H].
void expert_gate(const float *x, const float *gate, int64_t T, int64_t H, float *g);

// residual: [T, hidden] += MoE(x), x: [T, hidden]; w.router and w.experts must be set, and
// w.shared (+ w.shared_expert_gate) when the spec has a shared expert.
void moe_add(const ModelSpec &spec, const LayerWeights &w, const float *x, float *residual,
             int64_t num_tokens);

}  // namespace cpu
}  // namespace fg
