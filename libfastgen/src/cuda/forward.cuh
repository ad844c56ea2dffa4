// The parts of a forward pass that the whole pass (forward.cu: eager, or one decode graph) and the
// piecewise mixed pass (piecewise.cu: graphs between attentions) share: the embedding, one layer's
// RoPE + K/V write + attention, the final norm + LM head, and capturing a stream's launches as a
// graph.
#pragma once
#include "cuda/engine.cuh"
#include "cuda/ops.cuh"

namespace fgcu {

// h [m.T, H] = the embedding of the pass's tokens (scaled, + positions; OPT's project_in).
int forward_embed(fgcu_rank *e, const Meta &m, char *err);

// The attention and RoPE arguments every layer of the pass shares (layer_rope_args and
// layer_attend set the rest).
void pass_args(fgcu_rank *e, const Meta &m, AttnArgs *a, RopeArgs *ra);

// What attention reads in layer l: its cache planes and FP8 scales, its RoPE table, its window.
struct LayerAttn {
  bf16 *kc, *vc;  // K and V planes; MLA: kc holds the latent rows, vc null
  float k_scale, v_scale;
  const double *inv_freq;
  float attn_factor;
  int window;
};
LayerAttn layer_attn(const fgcu_rank *e, int64_t l);

// Layer l's fields of ra (its bias, RoPE table, qk-norm weights, cache planes and scales).
void layer_rope_args(const fgcu_rank *e, int64_t l, const LayerAttn &la, RopeArgs &ra);

// Layer l (not MLA), ra holding its fields (layer_rope_args): qkv [m.T rows] -> bias, qk-norm,
// RoPE, K/V -> cache (unless rope_done: the qkv GEMV did it, rope.cu qkv_gemv_rope); attn = paged
// attention.
int layer_attend(fgcu_rank *e, const LayerAttn &la, RopeArgs &ra, AttnArgs &a, bool rope_done, char *err);

// logits [m.R, V] = LM head (final norm (h[m.logit_rows] + owed_a + owed_b)), gathered to rank 0
// and soft-capped there.
int forward_logits(fgcu_rank *e, const Meta &m, const float *owed_a, const float *owed_b, char *err);

// Captures what run() launches on `st` as a graph into *exec (instantiated, not launched).
template <typename F>
int capture_graph(cudaStream_t st, F run, cudaGraphExec_t *exec, char *err) {
  cudaGraph_t graph = nullptr;
  FGCU_TRY(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  const int rc = run();
  const cudaError_t end = cudaStreamEndCapture(st, &graph);
  if (rc) {
    if (graph) cudaGraphDestroy(graph);
    return rc;
  }
  FGCU_TRY(end);
  const cudaError_t inst = cudaGraphInstantiate(exec, graph, 0);
  cudaGraphDestroy(graph);
  FGCU_TRY(inst);
  return 0;
}

}  // namespace fgcu
