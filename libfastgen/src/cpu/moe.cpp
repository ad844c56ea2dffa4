#include "cpu/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/gemm.h"
#include "cpu/mlp.h"
#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {

namespace {

// The k weights of one token (ids best first, so ids[0] holds the largest logit), in double.
// Renormalized: softmax(l)[id] / sum over the k selected == exp(l[id] - l_max) / sum of the
// same, the full softmax's denominator cancels. Otherwise that denominator is summed over all E.
void route_weights(const float *l, const int32_t *ids, int64_t E, int64_t k, bool renormalize,
                   double scale, float *weights) {
  const double top = l[ids[0]];
  double sum = 0;
  if (renormalize)
    for (int64_t j = 0; j < k; j++) sum += std::exp((double)l[ids[j]] - top);
  else
    for (int64_t e = 0; e < E; e++) sum += std::exp((double)l[e] - top);
  for (int64_t j = 0; j < k; j++) weights[j] = (float)(std::exp((double)l[ids[j]] - top) / sum * scale);
}

// allowed[e]: whether expert e is in one of the topk_groups groups with the largest best logit
// (softmax is monotonic: the best probability of a group belongs to its best logit).
void allowed_groups(const float *l, int64_t E, int64_t groups, int64_t topk_groups, std::vector<char> &allowed) {
  const int64_t size = E / groups;
  std::vector<float> best(groups);
  for (int64_t g = 0; g < groups; g++) best[g] = *std::max_element(l + g * size, l + (g + 1) * size);
  std::vector<char> chosen(groups, 0);
  for (int64_t j = 0; j < topk_groups; j++) {
    int64_t pick = -1;
    for (int64_t g = 0; g < groups; g++)
      if (!chosen[g] && (pick < 0 || best[g] > best[pick])) pick = g;
    chosen[pick] = 1;
  }
  allowed.resize(E);
  for (int64_t e = 0; e < E; e++) allowed[e] = chosen[e / size];
}

// residual: [T, hidden] += (sigmoid(x . shared_expert_gate) *) shared_mlp(x), x: [T, hidden].
void shared_expert_add(const ModelSpec &s, const LayerWeights &w, const float *x, float *residual,
                       int64_t T) {
  const int64_t H = s.hidden_size;
  if (!s.shared_expert_gate) {
    mlp(s, w.shared, s.shared_expert_intermediate_size, x, residual, T, /*accumulate=*/true);
    return;
  }
  std::vector<float> y(T * H), gate(T);  // [T, hidden] the shared MLP's output; [T] its gate
  mlp(s, w.shared, s.shared_expert_intermediate_size, x, y.data(), T, /*accumulate=*/false);
  expert_gate(x, w.shared_expert_gate, T, H, gate.data());
  parallel_for(T, [&](int64_t t) {
    for (int64_t i = 0; i < H; i++) residual[t * H + i] += gate[t] * y[t * H + i];
  });
}

}  // namespace

void expert_gate(const float *x, const float *gate, int64_t T, int64_t H, float *g) {
  gemm(x, gate, nullptr, g, T, 1, H);
  for (int64_t t = 0; t < T; t++) g[t] = (float)(1.0 / (1.0 + std::exp(-(double)g[t])));
}

MoeRouting moe_route(const float *logits, int64_t T, int64_t E, int64_t k, bool renormalize,
                     int64_t num_groups, int64_t topk_groups, double scale) {
  MoeRouting r;
  r.expert_ids.resize(T * k);
  r.weights.resize(T * k);
  std::vector<char> allowed(E, 1);
  for (int64_t t = 0; t < T; t++) {
    const float *l = logits + t * E;
    int32_t *ids = &r.expert_ids[t * k];
    if (num_groups > 1) allowed_groups(l, E, num_groups, topk_groups, allowed);
    // Softmax is monotonic, so the top-k of the probabilities is the top-k of the logits; strict
    // '>' keeps the lower id on ties. E and k are small: k passes over E.
    for (int64_t j = 0; j < k; j++) {
      int32_t best = -1;
      for (int32_t e = 0; e < (int32_t)E; e++) {
        bool taken = !allowed[e];
        for (int64_t i = 0; i < j; i++) taken |= ids[i] == e;
        if (!taken && (best < 0 || l[e] > l[best])) best = e;
      }
      ids[j] = best;
    }
    route_weights(l, ids, E, k, renormalize, scale, &r.weights[t * k]);
  }
  // Counting sort of the slots by expert; a stable pass keeps token order within an expert.
  r.expert_offsets.assign(E + 1, 0);
  for (int32_t id : r.expert_ids) r.expert_offsets[id + 1]++;
  for (int64_t e = 0; e < E; e++) r.expert_offsets[e + 1] += r.expert_offsets[e];
  std::vector<int32_t> fill(r.expert_offsets.begin(), r.expert_offsets.end() - 1);
  r.token_slots.resize(T * k);
  for (int64_t slot = 0; slot < T * k; slot++)
    r.token_slots[fill[r.expert_ids[slot]]++] = (int32_t)slot;
  return r;
}

void moe_add(const ModelSpec &s, const LayerWeights &w, const float *x, float *residual,
             int64_t T) {
  const int64_t H = s.hidden_size, E = s.num_experts, k = s.num_experts_per_tok;
  if (T == 0) return;
  std::vector<float> logits(T * E);  // [T, E]
  gemm(x, w.router, nullptr, logits.data(), T, E, H);
  const MoeRouting r = moe_route(logits.data(), T, E, k, s.moe_renormalize, s.moe_num_groups, s.moe_topk_groups,
                                 s.moe_routed_scale);

  // xs, ys: [T * k, hidden] in expert-grouped order; row_of[slot] is the slot's row there.
  std::vector<float> xs(T * k * H), ys(T * k * H);
  std::vector<int32_t> row_of(T * k);
  for (int64_t row = 0; row < T * k; row++) row_of[r.token_slots[row]] = (int32_t)row;
  parallel_for(T * k, [&](int64_t row) {
    memcpy(&xs[row * H], x + (r.token_slots[row] / k) * H, H * sizeof(float));
  });
  for (int64_t e = 0; e < E; e++) {
    const int64_t begin = r.expert_offsets[e], n = r.expert_offsets[e + 1] - begin;
    if (n > 0)
      mlp(s, w.experts[e], s.moe_intermediate_size, &xs[begin * H], &ys[begin * H], n,
          /*accumulate=*/false);
  }
  // Per token, the k outputs are summed in slot order: the result does not depend on the batch.
  parallel_for(T, [&](int64_t t) {
    float *out = residual + t * H;
    for (int64_t j = 0; j < k; j++) {
      const float wt = r.weights[t * k + j];
      const float *y = &ys[(int64_t)row_of[t * k + j] * H];
      for (int64_t i = 0; i < H; i++) out[i] += wt * y[i];
    }
  });
  if (s.shared_expert()) shared_expert_add(s, w, x, residual, T);
}

}  // namespace cpu
}  // namespace fg
