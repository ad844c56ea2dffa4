// Mixture-of-experts MLP on the device (Mixtral, Qwen2/3-MoE, DeepSeek-V2). CPU twin:
// cpu/moe.cpp (routing, scatter, combine, shared expert) + cpu/mlp.cpp (one expert).
//
//   x [T, H] bf16 ─ router gemm ─▶ logits [T, E] fp32 ─ top-k (in groups) ─▶ ids, weights [T, k]
//   scatter:  slots t*k + j grouped by expert, token order within one | e0 | e1 | e2 |...
//             offsets [E + 1], counts [E]; row_of [T*k] (slot -> row); an expert's rows start
//             256-byte aligned in every workspace (padding rows only when H, I are not /128)
//   gather:   xs[row_of[s]] = x[s / k]                              bf16 [rows, H]
//   expert e: rows [offsets[e], + counts[e]) of xs ─ mlp_in ─ act ─ down (+ down_b) ─▶ ys fp32
//   combine:  h[t] = (accumulate ? h[t] : 0) + sum_{j = 0..k-1} weight[t, j] * ys[row_of[t*k + j]]
//
// The host needs each expert's row count to size its GEMMs: one device -> host copy of the
// offsets and a stream sync per layer, so a step with MoE layers cannot be captured as a CUDA
// graph (moe_forward refuses to run inside a capture).
#pragma once
#include "cuda/common.cuh"
#include "cuda/linear.cuh"

namespace fgcu {

// How the router picks (cpu/moe.cpp moe_route): the top_k of num_experts by logit, ties to the
// lower id; group-limited (DeepSeek-V2) when num_groups > 1: only the experts of the topk_groups
// groups (num_experts / num_groups consecutive experts each) with the highest best logit compete.
// Weights: softmax over the k (renormalize, Mixtral) or over all E as it is (Qwen2-MoE,
// DeepSeek), times scale (routed_scaling_factor).
struct MoeRoute {
  int num_experts = 0, top_k = 0;
  bool renormalize = true;
  int num_groups = 1, topk_groups = 1;
  float scale = 1.f;
};

// Routing (moe_forward's steps after the router GEMM; CPU twin: cpu/moe.cpp moe_route): per
// token its top-k experts and their weights as route says, then the scatter of slots t*k + j by
// expert. E = route.num_experts, k = route.top_k.
//   logits [T, E] fp32; ids, weights, row_of [T*k]; meta [2E + 1]: offsets [E + 1], counts [E].
// pad: each non-empty expert's rows start at a multiple of pad (moe_forward: see row_pad).
int moe_route(const float *logits, int T, const MoeRoute &route, int pad, int *ids, float *weights, int *meta,
              int *row_of, cudaStream_t st, char *err);

// The shared expert's gate (CPU twin: cpu/moe.cpp expert_gate): act[t, :I] *= sigmoid(x[t] . gate).
//   x: [T, H] bf16, gate: [H] bf16, act: [T, I] bf16
int expert_gate_rows(const bf16 *x, const bf16 *gate, int T, int H, int I, bf16 *act, cudaStream_t st, char *err);

// Workspace of moe_forward, owned by the caller, grown on demand (moe_work_reserve).
struct MoeWork {
  DevBuf logits;   // fp32 [T, E]
  DevBuf ids;      // int  [T*k]  expert of slot t*k + j, best first
  DevBuf weights;  // fp32 [T*k]  renormalized routing weights
  DevBuf row_of;   // int  [T*k]  workspace row holding slot t*k + j
  DevBuf meta;     // int  [2E + 1]  row offsets [E + 1], then counts [E]
  DevBuf xs;       // bf16 [rows, H]          rows = T*k + padding (see row_pad in moe.cu)
  DevBuf mid;      // bf16 [rows, mlp_rows]
  DevBuf act;      // bf16 [rows, I]
  DevBuf ys;       // fp32 [rows, H]
  int *meta_host = nullptr;  // pinned twin of meta
  int meta_host_cap = 0;
};

// Grows w for T tokens; call it before a step to keep allocations off the layer loop.
// act: ActKind (gated kinds take mlp_rows = 2I).
int moe_work_reserve(MoeWork &w, int T, int H, int I, int E, int k, int act, char *err);
void moe_work_release(MoeWork &w);

// One layer's experts on the device. The pointer arrays live on the host, [E] entries each.
struct MoeLayer {
  const bf16 *router;            // [E, H]
  const Weight *mlp_in;          // [E] of [mlp_rows, H]; gated: rows gate_0, up_0, gate_1, ...
  const Weight *down;            // [E] of [H, I]
  const float *const *mlp_in_b;  // null, or [E] -> [mlp_rows] interleaved like the rows
  const float *const *down_b;    // null, or [E] -> [H]
};

// h: [T, H] fp32 = (accumulate ? h : 0) + MoE(x), x: [T, H] bf16 (normed). act: ActKind.
// I: each expert's width.
// The expert biases are applied inside, each weighted by its routing weight (as on the CPU),
// so nothing is owed to the residual afterwards. Syncs `st` once (see above).
int moe_forward(const Gemms &g, MoeWork &w, const MoeLayer &L, const bf16 *x, float *h, bool accumulate,
                int T, int H, int I, const MoeRoute &route, int act, cudaStream_t st, char *err);

// The shared expert (Qwen2-MoE): a gated or plain MLP of its own width on every token, no biases.
struct SharedExpert {
  Weight mlp_in;       // [rows, H], rows = 2 * width (gated: gate_0, up_0, gate_1, ...) or width
  Weight down;         // [H, width]
  const bf16 *gate;    // [H] or null: the output times sigmoid(x . gate) per token
  int width;
};

// h[T, H] += shared expert(x) (its columns' partial under tensor parallelism), x: [T, H] bf16.
// mid: bf16 [T, rows], actv: bf16 [T, width] workspaces. Captures fine in a CUDA graph.
int shared_expert_forward(const Gemms &g, const SharedExpert &s, const bf16 *x, float *h, int T, int H, int act,
                          bf16 *mid, bf16 *actv, cudaStream_t st, char *err);

}  // namespace fgcu
