// One step of a rank (rank_prepare, rank_run = rank_forward + rank_complete): metadata and
// workspaces, the forward pass (forward.cu), sampling on the device and the copy back
// (sample_and_return), and the wait for the stream, bounded under tensor parallelism
// (stream_wait). fg_step_launch stops after rank_forward; fg_step_finish runs rank_complete.
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda/engine.cuh"

using namespace fgcu;

int64_t fgcu::now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int fgcu::stream_wait(cudaStream_t st, const WaitCtl *w, char *err) {
  if (!w) {
    FGCU_TRY(cudaStreamSynchronize(st));
    return 0;
  }
  for (int spins = 0;; spins++) {
    const cudaError_t q = cudaStreamQuery(st);
    if (q == cudaSuccess) return 0;
    if (q != cudaErrorNotReady) FGCU_TRY(q);
    if (w->abort && *w->abort) {
      snprintf(err, 512, "stopped: another tensor-parallel rank failed");
      return FG_ERR_DEVICE;
    }
    if (now_ns() > w->deadline_ns) {
      snprintf(err, 512, "a collective did not complete within %d ms (a rank failed or stalled)", w->timeout_ms);
      return FG_ERR_DEVICE;
    }
    if (spins > 2000) usleep(20);  // spin briefly (decode steps are short), then poll gently
  }
}

int fgcu::sample_and_return(const Meta &m, const float *logits, int V, float *z, int *counts, void *out_dev,
                      void *out_host, fg_step_output *out, cudaStream_t st, const WaitCtl *wait, char *err) {
  const int R = m.R, L = m.L;
  if (R == 0) return 0;
  int *ids = (int *)out_dev;
  float *lp = (float *)(ids + R);
  int *top_ids = (int *)(lp + R);
  float *top_lp = (float *)(top_ids + (size_t)R * L);
  SampleArgs sa;
  sa.logits = logits, sa.R = R, sa.V = V, sa.rows = m.rows;
  sa.pen_ids = m.pen_ids, sa.token_ids = m.token_ids, sa.bias_ids = m.bias_ids, sa.bias_vals = m.bias_vals, sa.masks = m.masks;
  sa.num_logprobs = L, sa.z = z, sa.counts = counts;
  sa.out_ids = ids, sa.out_logprob = lp, sa.out_top_ids = top_ids, sa.out_top_logprobs = top_lp;
  FGCU_CHECK(sample(sa, st, err));
  const size_t bytes = (size_t)R * (8 + 8 * L);
  FGCU_TRY(cudaMemcpyAsync(out_host, out_dev, bytes, cudaMemcpyDeviceToHost, st));
  if (out->logits)
    FGCU_TRY(cudaMemcpyAsync(out->logits, logits, (size_t)R * V * 4, cudaMemcpyDeviceToHost, st));
  FGCU_CHECK(stream_wait(st, wait, err));
  const int *h_ids = (const int *)out_host;
  const float *h_lp = (const float *)(h_ids + R);
  const int *h_top = (const int *)(h_lp + R);
  const float *h_toplp = (const float *)(h_top + (size_t)R * L);
  memcpy(out->ids, h_ids, (size_t)R * 4);
  if (out->logprobs) memcpy(out->logprobs, h_lp, (size_t)R * 4);
  if (out->top_ids) memcpy(out->top_ids, h_top, (size_t)R * L * 4);
  if (out->top_logprobs) memcpy(out->top_logprobs, h_toplp, (size_t)R * L * 4);
  return 0;
}
int fgcu::rank_prepare(fgcu_rank *e, const fg_batch *b, Meta *m, char *err) {
  if (!e->finalized) {
    snprintf(err, 512, "fg_step: engine is not finalized");
    return FG_ERR_INVALID_ARGUMENT;
  }
  const fgcu_model &M = e->m;
  const int group = (int)(M.num_heads / M.num_kv_heads);
  FGCU_CHECK(build_meta(e->meta, b, group, (int)M.num_kv_heads, e->num_sms, 0, (int)M.vocab_size, e->stream, m, err));
  if (M.mla) {  // latent attention splits every token's keys alike (attention_mla.cuh)
    int max_context = 0;
    for (int s = 0; s < b->num_seqs; s++) {
      const int end = b->context_lens[s] + b->cu_seqlens[s + 1] - b->cu_seqlens[s];
      if (end > max_context) max_context = end;
    }
    m->splits = mla_choose_splits(m->T, (int)M.num_heads, max_context, e->num_sms);
  }
  Meta sized = *m;  // a mixed pass run in pieces computes its padded rows too
  if (const int rows = piece_rows(e, *m)) sized.T = rows;
  return ensure_workspaces(e, sized, err);
}

namespace {

// True the first time this rank runs a step of this shape (T, S, R, logprobs, attention tiling);
// kernels new to the device may load then. MoE steps always count as new: their per-expert
// GEMM shapes follow the routing.
bool new_shape(fgcu_rank *e, const Meta &m) {
  if (e->m.num_experts > 0) return true;
  uint64_t h = 1469598103934665603ull;
  const uint64_t parts[] = {(uint64_t)m.T, (uint64_t)m.S, (uint64_t)m.R, (uint64_t)m.L, (uint64_t)m.splits,
                            (uint64_t)m.num_wide, (uint64_t)m.num_narrow, (uint64_t)m.any_penalty};
  for (uint64_t p : parts) h = (h ^ p) * 1099511628211ull;
  h |= 1;  // 0 marks an empty slot
  const size_t n = sizeof e->seen_shapes / sizeof e->seen_shapes[0];
  for (size_t i = 0, at = h % n; i < n; i++, at = (at + 1) % n) {
    if (e->seen_shapes[at] == h) return false;
    if (e->seen_shapes[at] == 0) {
      e->seen_shapes[at] = h;
      return true;
    }
  }
  memset(e->seen_shapes, 0, sizeof e->seen_shapes);  // full: forget (later steps pay a few syncs)
  return true;
}

}  // namespace

int fgcu::rank_forward(fgcu_rank *e, const Meta &m, char *err) {
  const fgcu_model &M = e->m;
  const bool decode_only = m.T == m.S;  // one token per sequence
  e->lockstep = e->tp > 1 && new_shape(e, m);
  // MoE layers sync per layer (moe.cuh), so their steps are never captured
  if (decode_only && e->graphs_on && !e->prof && M.num_experts == 0) return forward_graphed(e, m, err);
  if (!decode_only && piece_rows(e, m)) return forward_piecewise(e, m, err);
  return forward(e, m, err);
}

int fgcu::rank_complete(fgcu_rank *e, const Meta &m, fg_step_output *out, char *err) {
  const fgcu_model &M = e->m;
  // Sampling may load kernels new to rank 0: first let every rank launch its whole pass.
  if (e->tp > 1 && !e->lockstep && m.R > 0) FGCU_CHECK(e->rendezvous(e->group, err));
  if (out && m.R > 0)
    FGCU_CHECK(sample_and_return(m, (const float *)e->logits.p, (int)M.vocab_size, (float *)e->z.p,
                                 (int *)e->counts.p, e->out_dev.p, e->out_host, out, e->stream, e->wait, err));
  else FGCU_CHECK(stream_wait(e->stream, e->wait, err));
  profiler_step_done(e->prof);
  const cudaError_t ce = cudaGetLastError();
  if (ce != cudaSuccess) {
    snprintf(err, 512, "fg_step: %s", cudaGetErrorString(ce));
    return FG_ERR_DEVICE;
  }
  return 0;
}

int fgcu::rank_run(fgcu_rank *e, const Meta &m, fg_step_output *out, char *err) {
  FGCU_CHECK(rank_forward(e, m, err));
  return rank_complete(e, m, out, err);
}
