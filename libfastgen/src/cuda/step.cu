// One forward pass + sampling on the device (fgcu_engine_step), and the step metadata upload.
//
//   h = embed(tokens)                                   fp32 residual [T, H]
//   per layer:  x = norm(h (+ owed biases))             bf16 [T, H]
//               qkv = x Wqkv^T -> (+bias, RoPE, K/V -> cache)   one fused kernel after the GEMM
//               attn = paged_attention(q, cache)        bf16 [T, nh * hd]
//               h += attn Wo^T                          (cuBLASLt / GEMV with beta = 1)
//               x = norm(h + o_bias) (sequential) ; h += down(act(x Wgate_up^T))
//   logits = norm(h[last tokens]) Wlm^T ; sample on the device ; copy ids/logprobs back
// Output biases (o, down) are owed to the residual and folded into the next norm.
//
// Tensor parallelism (tp > 1; tp.cu runs one thread per rank): each rank holds a slice of the
// heads and of the MLP columns, so its o and down GEMMs give a partial sum. Rank 0 adds its
// partial to h, the others write theirs in place of h, and one all-reduce (fp32) leaves every
// rank with h + the sum of partials. The embedding is sharded by vocab rows (a rank's missing
// rows read as zeros, then all-reduce); the LM head likewise, its logits all-gathered to rank 0,
// which alone samples.
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda/engine.cuh"
#include "cuda/ops.cuh"

using namespace fgcu;

namespace fgcu {

int build_meta(MetaBuf &mb, const fg_batch *b, int group, int num_kv_heads, int num_sms,
               int splits, cudaStream_t stream, Meta *m, char *err) {
  const int T = b->num_tokens, S = b->num_seqs;
  const int nb = b->block_indptr[S];
  const int np = b->penalty_indptr ? b->penalty_indptr[S] : 0;
  const int nbias = b->logit_bias_indptr ? b->logit_bias_indptr[S] : 0;
  int num_next = 0;  // prompt-logprob rows
  if (b->next_token_ids)
    for (int t = 0; t < T; t++) num_next += b->next_token_ids[t] >= 0;
  const int rows_max = S + num_next;
  // Variable-length regions get power-of-two room, so consecutive decode steps keep one layout
  // (and one set of device addresses a captured graph can replay).
  auto room = [](int n) {
    int c = 64;
    while (c < n) c <<= 1;
    return c;
  };
  m->layout = ((uint64_t)room(nb) << 40) ^ ((uint64_t)room(np) << 20) ^ (uint64_t)room(nbias);
  const int tiles = attn_num_tiles_bound(T, S, group);
  // regions, each 16-byte aligned: [name, bytes]
  size_t off = 0;
  auto take = [&](size_t bytes) {
    const size_t at = off;
    off = (off + bytes + 15) / 16 * 16;
    return at;
  };
  const size_t o_tok = take(T * 4), o_pos = take(T * 4), o_seq = take(T * 4);
  const size_t o_cu = take((S + 1) * 4), o_ctx = take(S * 4), o_bptr = take((S + 1) * 4);
  const size_t o_bidx = take(room(nb) * 4), o_lrows = take(rows_max * 4), o_rseq = take(rows_max * 4);
  const size_t o_wide = take(tiles * sizeof(AttnTile)), o_narrow = take(tiles * sizeof(AttnTile));
  const size_t o_pen = take(room(np) * 4), o_bids = take(room(nbias) * 4), o_bvals = take(room(nbias) * 4);
  const size_t o_rows = take(rows_max * sizeof(SampleRow));
  if (off > mb.cap) {
    release(mb);
    const size_t cap = off * 2;
    FGCU_TRY(cudaMallocHost(&mb.host, cap));
    FGCU_TRY(cudaMalloc(&mb.dev, cap));
    mb.cap = cap;
  }
  char *h = mb.host;
  auto hi = [&](size_t o) { return (int *)(h + o); };
  memcpy(hi(o_tok), b->token_ids, T * 4);
  memcpy(hi(o_pos), b->positions, T * 4);
  memcpy(hi(o_cu), b->cu_seqlens, (S + 1) * 4);
  memcpy(hi(o_ctx), b->context_lens, S * 4);
  memcpy(hi(o_bptr), b->block_indptr, (S + 1) * 4);
  if (nb) memcpy(hi(o_bidx), b->block_indices, nb * 4);
  if (np) memcpy(hi(o_pen), b->penalty_ids, np * 4);
  if (nbias) {
    memcpy(hi(o_bids), b->logit_bias_ids, nbias * 4);
    memcpy(h + o_bvals, b->logit_bias_values, nbias * 4);
  }
  int *token_seq = hi(o_seq), *lrows = hi(o_lrows), *rseq = hi(o_rseq);
  SampleRow *rows = (SampleRow *)(h + o_rows);
  int R = 0, max_narrow_ctx = 0;
  bool any_penalty = false;
  for (int s = 0; s < S; s++) {
    const int t0 = b->cu_seqlens[s], t1 = b->cu_seqlens[s + 1];
    for (int t = t0; t < t1; t++) token_seq[t] = s;
    if ((t1 - t0) * group <= 16 && b->context_lens[s] + (t1 - t0) > max_narrow_ctx)
      max_narrow_ctx = b->context_lens[s] + (t1 - t0);
    if (!b->wants_token[s]) continue;
    SampleRow &r = rows[R];
    memset(&r, 0, sizeof r);
    r.forced = -1;
    r.temperature = b->temperature[s];
    r.top_p = b->top_p[s];
    r.top_k = b->top_k[s];
    r.min_p = b->min_p[s];
    r.seed = b->seed[s];
    r.position = (long long)b->context_lens[s] + (t1 - t0);
    r.presence = b->presence_penalty ? b->presence_penalty[s] : 0.f;
    r.frequency = b->frequency_penalty ? b->frequency_penalty[s] : 0.f;
    r.repetition = b->repetition_penalty ? b->repetition_penalty[s] : 1.f;
    if (b->penalty_indptr) r.pen_begin = b->penalty_indptr[s], r.pen_end = b->penalty_indptr[s + 1];
    if (b->logit_bias_indptr) r.bias_begin = b->logit_bias_indptr[s], r.bias_end = b->logit_bias_indptr[s + 1];
    if (r.pen_end > r.pen_begin && (r.repetition != 1.f || r.presence != 0.f || r.frequency != 0.f))
      any_penalty = true;
    lrows[R] = t1 - 1;
    rseq[R] = s;
    R++;
  }
  const int R_sampled = R;
  for (int t = 0; num_next && t < T; t++) {  // prompt logprobs: log-softmax rows, id given
    if (b->next_token_ids[t] < 0) continue;
    SampleRow &r = rows[R];
    memset(&r, 0, sizeof r);
    r.forced = b->next_token_ids[t];
    r.top_p = 1.f, r.repetition = 1.f;
    lrows[R] = t;
    rseq[R] = t;
    R++;
  }
  AttnTile *wide = (AttnTile *)(h + o_wide), *narrow = (AttnTile *)(h + o_narrow);
  attn_make_tiles(S, b->cu_seqlens, group, wide, &m->num_wide, narrow, &m->num_narrow);
  m->splits = splits > 0 ? splits : attn_choose_splits(m->num_narrow, num_kv_heads, max_narrow_ctx, num_sms);
  FGCU_TRY(cudaMemcpyAsync(mb.dev, mb.host, off, cudaMemcpyHostToDevice, stream));

  char *d = mb.dev;
  m->T = T, m->S = S, m->R = R, m->R_next = R - R_sampled, m->L = b->num_logprobs, m->any_penalty = any_penalty;
  m->row_seq = rseq;
  m->token_ids = (const int *)(d + o_tok);
  m->positions = (const int *)(d + o_pos);
  m->token_seq = (const int *)(d + o_seq);
  m->cu_seqlens = (const int *)(d + o_cu);
  m->context_lens = (const int *)(d + o_ctx);
  m->block_indptr = (const int *)(d + o_bptr);
  m->block_indices = (const int *)(d + o_bidx);
  m->logit_rows = (const int *)(d + o_lrows);
  m->pen_ids = (const int *)(d + o_pen);
  m->bias_ids = (const int *)(d + o_bids);
  m->bias_vals = (const float *)(d + o_bvals);
  m->wide = (const AttnTile *)(d + o_wide);
  m->narrow = (const AttnTile *)(d + o_narrow);
  m->rows = (const SampleRow *)(d + o_rows);
  return 0;
}

}  // namespace fgcu

namespace {

int ensure_workspaces(fgcu_engine *e, const Meta &m, char *err) {
  const fgcu_model &M = e->m;
  const size_t T = m.T, H = M.hidden_size, I = M.intermediate_size, qd = M.num_heads * M.head_dim;
  FGCU_CHECK(ensure(e->h, T * H * 4, "activations", err));
  FGCU_CHECK(ensure(e->x, T * H * 2, "activations", err));
  if (M.parallel && M.parallel_mlp_norm) FGCU_CHECK(ensure(e->x2, T * H * 2, "activations", err));
  FGCU_CHECK(ensure(e->qkv, T * e->qkv_rows * 2, "activations", err));
  FGCU_CHECK(ensure(e->attn, T * qd * 2, "activations", err));
  FGCU_CHECK(ensure(e->mlp, T * e->mlp_rows * 2, "activations", err));
  FGCU_CHECK(ensure(e->act, T * I * 2, "activations", err));
  if (m.splits > 1) {
    FGCU_CHECK(ensure(e->part_o, (size_t)m.splits * T * M.num_heads * M.head_dim * 4, "attention splits", err));
    FGCU_CHECK(ensure(e->part_lse, (size_t)m.splits * T * M.num_heads * 4, "attention splits", err));
  }
  const size_t R = m.R > 0 ? m.R : 1, V = M.vocab_size, L = m.L;
  FGCU_CHECK(ensure(e->xf, R * H * 2, "logits", err));
  FGCU_CHECK(ensure(e->logits, R * V * 4, "logits", err));
  FGCU_CHECK(ensure(e->z, R * V * 4, "sampling", err));
  if (m.any_penalty) FGCU_CHECK(ensure(e->counts, R * V * 4, "sampling", err));
  if (M.embed_dim != M.hidden_size) {
    const size_t D = M.embed_dim;
    FGCU_CHECK(ensure(e->emb, T * D * 4, "activations", err));
    FGCU_CHECK(ensure(e->xd, (T > R ? T : R) * D * 2, "activations", err));
  }
  if (M.num_experts > 0)
    FGCU_CHECK(moe_work_reserve(e->moe, m.T, (int)H, (int)I, (int)M.num_experts, (int)M.experts_per_tok, M.act, err));
  if (e->tp > 1) {
    FGCU_CHECK(ensure(e->logits_part, R * e->vocab_rows * 4, "logits", err));
    FGCU_CHECK(ensure(e->gathered, R * e->vocab_rows * e->tp * 4, "logits", err));
  }
  const size_t out_bytes = R * (8 + 8 * L);
  FGCU_CHECK(ensure(e->out_dev, out_bytes, "sampling", err));
  if (e->out_host_bytes < out_bytes) {
    if (e->out_host) cudaFreeHost(e->out_host);
    e->out_host = nullptr;
    e->out_host_bytes = 0;
    FGCU_TRY(cudaMallocHost(&e->out_host, out_bytes * 2));
    e->out_host_bytes = out_bytes * 2;
  }
  return 0;
}

// In-place fp32 sum over the ranks of x[0, n) (no-op at tp == 1). In a lockstep step, returns
// only once every rank has launched it (engine.cuh: lazy loading).
int all_reduce(fgcu_engine *e, float *x, size_t n, char *err) {
  if (e->tp == 1 || e->skip_collectives) return 0;
  const ncclResult_t r = e->nccl->all_reduce(x, x, n, kNcclFloat32, kNcclSum, e->comm, e->stream);
  if (r != 0) {
    snprintf(err, 512, "NCCL all-reduce on rank %d: %s", e->rank, e->nccl->error_string(r));
    return FG_ERR_DEVICE;
  }
  return e->lockstep ? e->rendezvous(e->group, err) : 0;
}

// logits [R, V] on rank 0 from every rank's columns logits_part [R, vocab_rows].
int gather_logits(fgcu_engine *e, int R, float *logits, char *err) {
  const size_t vr = e->vocab_rows, V = e->m.vocab_size;
  float *all = (float *)e->gathered.p;
  if (!e->skip_collectives) {
    const ncclResult_t r = e->nccl->all_gather(e->logits_part.p, all, (size_t)R * vr, kNcclFloat32, e->comm, e->stream);
    if (r != 0) {
      snprintf(err, 512, "NCCL all-gather on rank %d: %s", e->rank, e->nccl->error_string(r));
      return FG_ERR_DEVICE;
    }
    if (e->lockstep) FGCU_CHECK(e->rendezvous(e->group, err));
  }
  if (e->rank != 0) return 0;
  for (int k = 0; k < e->tp; k++) {  // rank k's block [R, vr] -> columns [k * vr, ...) of logits
    const size_t c0 = k * vr, w = c0 >= V ? 0 : (V - c0 < vr ? V - c0 : vr);
    if (w == 0) continue;
    FGCU_TRY(cudaMemcpy2DAsync(logits + c0, V * 4, all + (size_t)k * R * vr, vr * 4, w * 4, R,
                               cudaMemcpyDeviceToDevice, e->stream));
  }
  return 0;
}

int forward(fgcu_engine *e, const Meta &m, char *err) {
  const fgcu_model &M = e->m;
  const cudaStream_t st = e->stream;
  const int T = m.T, H = (int)M.hidden_size, I = (int)M.intermediate_size, V = (int)M.vocab_size;
  const int nh = (int)M.num_heads, nkv = (int)M.num_kv_heads, hd = (int)M.head_dim, qd = nh * hd;
  const NormOp op = M.norm_layer ? kNormLayer : kNormRms;
  const float eps = M.norm_eps;
  float *h = (float *)e->h.p;
  bf16 *x = (bf16 *)e->x.p, *x2 = (bf16 *)e->x2.p, *qkv = (bf16 *)e->qkv.p;
  bf16 *attn = (bf16 *)e->attn.p, *mlp = (bf16 *)e->mlp.p, *act = (bf16 *)e->act.p;

  Profiler *pr = e->prof;
  const bool lead = e->rank == 0;  // rank 0 adds what every rank holds whole (h, pos_embed)
  const int D = (int)M.embed_dim;
  bf16 *xd = (bf16 *)e->xd.p;      // embed_dim != hidden: bf16 rows of width D
  if (D != H) {  // OPT's project_in: h = bf16(embed rows) proj_in^T (+ pos_embed)
    float *ef = (float *)e->emb.p;
    FGCU_CHECK(embed_tokens(e->embed, nullptr, m.token_ids, m.positions, T, D, (int)e->vocab_begin,
                            (int)e->vocab_rows, ef, st, err));
    FGCU_CHECK(all_reduce(e, ef, (size_t)T * D, err));
    FGCU_CHECK(norm_rows(ef, nullptr, T, D, nullptr, nullptr, false, kNormNone, nullptr, nullptr, eps, xd, st, err));
    FGCU_CHECK(gemm(e->gemm, xd, e->proj_in, h, true, false, T, H, D, st, err));
    if (e->pos_embed) FGCU_CHECK(add_pos_embed(e->pos_embed, m.positions, T, H, h, st, err));
  } else {
    FGCU_CHECK(embed_tokens(e->embed, lead ? e->pos_embed : nullptr, m.token_ids, m.positions, T, H,
                            (int)e->vocab_begin, (int)e->vocab_rows, h, st, err));
    FGCU_CHECK(all_reduce(e, h, (size_t)T * H, err));
  }
  profiler_mark(pr, st, "embed");
  AttnArgs a;
  memset(&a, 0, sizeof a);
  a.q_stride = e->qkv_rows;
  a.out = attn;
  a.out_stride = qd;
  a.cu_seqlens = m.cu_seqlens, a.context_lens = m.context_lens;
  a.block_indptr = m.block_indptr, a.block_indices = m.block_indices, a.token_seq = m.token_seq;
  a.wide = m.wide, a.narrow = m.narrow, a.num_wide = m.num_wide, a.num_narrow = m.num_narrow;
  a.splits = m.splits, a.part_o = (float *)e->part_o.p, a.part_lse = (float *)e->part_lse.p;
  a.num_tokens = T, a.num_heads = nh, a.num_kv_heads = nkv, a.head_dim = hd;
  a.block_size = e->block_size, a.window = M.sliding_window;
  a.scale = 1.f / sqrtf((float)hd);

  const float *owed_a = nullptr, *owed_b = nullptr;  // biases not yet added to h
  for (int64_t l = 0; l < M.num_layers; l++) {
    const LayerW &w = e->layers[l];
    bf16 *kc = e->kv + (size_t)(2 * l) * e->layer_elems, *vc = kc + e->layer_elems;
    const bool post = M.post_norm;  // x = bf16(h): layer 0 here, later layers from the last norm
    if (!post) FGCU_CHECK(norm_rows(h, nullptr, T, H, owed_a, owed_b, true, op, w.attn_norm, w.attn_norm_b, eps, x, st, err));
    else if (l == 0) FGCU_CHECK(norm_rows(h, nullptr, T, H, nullptr, nullptr, false, kNormNone, nullptr, nullptr, eps, x, st, err));
    profiler_mark(pr, st, "norm");
    owed_a = owed_b = nullptr;
    const bool two_norms = M.parallel && M.parallel_mlp_norm;
    if (two_norms)
      FGCU_CHECK(norm_rows(h, nullptr, T, H, nullptr, nullptr, false, op, w.mlp_norm, w.mlp_norm_b, eps, x2, st, err));
    FGCU_CHECK(gemm(e->gemm, x, w.qkv, qkv, false, false, T, e->qkv_rows, H, st, err));
    profiler_mark(pr, st, "gemm qkv");
    FGCU_CHECK(qkv_rope_kv_write(qkv, w.qkv_b, m.positions, m.token_seq, m.block_indptr, m.block_indices,
                                 e->inv_freq, T, nh, nkv, hd, M.rotary_dim, e->block_size, kc, vc, st, err));
    profiler_mark(pr, st, "rope + kv write");
    a.q = qkv, a.k_cache = kc, a.v_cache = vc;
    FGCU_CHECK(paged_attention(a, st, err));
    profiler_mark(pr, st, "attention");
    FGCU_CHECK(gemm(e->gemm, attn, w.o, h, true, lead, T, H, qd, st, err));
    profiler_mark(pr, st, "gemm o");
    const bf16 *mlp_x = x;
    if (M.parallel) {  // the MLP's partial joins the attention's: one all-reduce for both
      mlp_x = two_norms ? x2 : x;
      owed_a = w.o_b;
    } else {
      FGCU_CHECK(all_reduce(e, h, (size_t)T * H, err));
      if (post) FGCU_CHECK(norm_rows_in_place(h, T, H, w.o_b, op, w.attn_norm, w.attn_norm_b, eps, x, st, err));
      else FGCU_CHECK(norm_rows(h, nullptr, T, H, w.o_b, nullptr, true, op, w.mlp_norm, w.mlp_norm_b, eps, x, st, err));
      profiler_mark(pr, st, "norm");
    }
    if (M.num_experts > 0) {  // expert biases are weighted inside, on rank 0 only: none owed
      MoeLayer ml;
      ml.router = w.router;
      ml.mlp_in = w.ex_in, ml.down = w.ex_down;
      ml.mlp_in_b = M.mlp_bias ? w.ex_in_b : nullptr;
      ml.down_b = M.mlp_bias && lead ? w.ex_down_b : nullptr;
      FGCU_CHECK(moe_forward(e->gemm, e->moe, ml, mlp_x, h, lead || M.parallel, T, H, I, (int)M.num_experts,
                             (int)M.experts_per_tok, M.act, st, err));
      FGCU_CHECK(all_reduce(e, h, (size_t)T * H, err));
      if (post) FGCU_CHECK(norm_rows_in_place(h, T, H, nullptr, op, w.mlp_norm, w.mlp_norm_b, eps, x, st, err));
      profiler_mark(pr, st, "moe");
      owed_b = nullptr;
      continue;
    }
    if (gemv_gated(mlp_x, w.mlp_in, w.mlp_in_b, M.act, act, T, e->mlp_rows, H, st)) {
      FGCU_LAUNCHED("gemv_gated");
      profiler_mark(pr, st, "gemm gate_up + act");
    } else {
      FGCU_CHECK(gemm(e->gemm, mlp_x, w.mlp_in, mlp, false, false, T, e->mlp_rows, H, st, err));
      profiler_mark(pr, st, "gemm gate_up");
      FGCU_CHECK(activation(mlp, w.mlp_in_b, act, T, I, (ActKind)M.act, st, err));
      profiler_mark(pr, st, "activation");
    }
    FGCU_CHECK(gemm(e->gemm, act, w.down, h, true, lead || M.parallel, T, H, I, st, err));
    FGCU_CHECK(all_reduce(e, h, (size_t)T * H, err));
    profiler_mark(pr, st, "gemm down");
    if (post) FGCU_CHECK(norm_rows_in_place(h, T, H, w.down_b, op, w.mlp_norm, w.mlp_norm_b, eps, x, st, err));
    else owed_b = w.down_b;
  }
  if (m.R == 0) return 0;
  bf16 *xf = (bf16 *)e->xf.p;
  float *logits = (float *)e->logits.p;
  FGCU_CHECK(norm_rows(h, m.logit_rows, m.R, H, owed_a, owed_b, false, M.final_norm ? op : kNormNone,
                       e->final_norm, e->final_norm_b, eps, xf, st, err));
  const int Vr = (int)e->vocab_rows;
  float *cols = e->tp > 1 ? (float *)e->logits_part.p : logits;  // [R, Vr]
  if (D != H) FGCU_CHECK(gemm(e->gemm, xf, e->proj_out, xd, false, false, m.R, D, H, st, err));  // project_out
  FGCU_CHECK(gemm(e->gemm, D != H ? xd : xf, e->lm_head, cols, true, false, m.R, Vr, D, st, err));
  if (e->lm_head_b) FGCU_CHECK(add_bias_rows(cols, e->lm_head_b, m.R, Vr, st, err));
  if (e->tp > 1) FGCU_CHECK(gather_logits(e, m.R, logits, err));
  profiler_mark(pr, st, "final norm + lm head");
  (void)V;
  return 0;
}

}  // namespace

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
  sa.pen_ids = m.pen_ids, sa.bias_ids = m.bias_ids, sa.bias_vals = m.bias_vals;
  sa.num_logprobs = L, sa.z = z, sa.counts = counts;
  sa.out_ids = ids, sa.out_logprob = lp, sa.out_top_ids = top_ids, sa.out_top_logprobs = top_lp;
  FGCU_CHECK(sample(sa, st, err));
  const size_t bytes = (size_t)R * (8 + 8 * L);
  FGCU_TRY(cudaMemcpyAsync(out_host, out_dev, bytes, cudaMemcpyDeviceToHost, st));
  const int RS = R - m.R_next;  // sampled rows; the rest are prompt-logprob rows
  if (out->logits)
    for (int r = 0; r < RS; r++)
      FGCU_TRY(cudaMemcpyAsync(out->logits + (size_t)m.row_seq[r] * V, logits + (size_t)r * V,
                               (size_t)V * 4, cudaMemcpyDeviceToHost, st));
  FGCU_CHECK(stream_wait(st, wait, err));
  const int *h_ids = (const int *)out_host;
  const float *h_lp = (const float *)(h_ids + R);
  const int *h_top = (const int *)(h_lp + R);
  const float *h_toplp = (const float *)(h_top + (size_t)R * L);
  for (int r = RS; r < R; r++) {  // row_seq holds the token
    const size_t t = m.row_seq[r];
    out->next_token_logprobs[t] = h_lp[r];
    for (int k = 0; k < L; k++) {
      if (out->next_top_ids) out->next_top_ids[t * L + k] = h_top[(size_t)r * L + k];
      if (out->next_top_logprobs) out->next_top_logprobs[t * L + k] = h_toplp[(size_t)r * L + k];
    }
  }
  for (int r = 0; r < RS; r++) {
    const int s = m.row_seq[r];
    out->sampled_ids[s] = h_ids[r];
    if (out->sampled_logprobs) out->sampled_logprobs[s] = h_lp[r];
    for (int k = 0; k < L; k++) {
      if (out->top_ids) out->top_ids[(size_t)s * L + k] = h_top[(size_t)r * L + k];
      if (out->top_logprobs) out->top_logprobs[(size_t)s * L + k] = h_toplp[(size_t)r * L + k];
    }
  }
  return 0;
}

namespace {

// Runs forward() for a decode-only batch through a cached CUDA graph: the first time a key is
// seen it runs eagerly (plans cuBLASLt, sets kernel attributes), the second time it is captured.
int forward_graphed(fgcu_engine *e, const Meta &m, char *err) {
  const uint64_t key[10] = {(uint64_t)m.T, (uint64_t)m.S, (uint64_t)m.R,
                            ((uint64_t)m.num_wide << 32) | (uint64_t)m.num_narrow, (uint64_t)m.splits,
                            m.layout, (uint64_t)(uintptr_t)e->meta.dev,
                            (uint64_t)(uintptr_t)e->h.p ^ ((uint64_t)(uintptr_t)e->qkv.p << 1),
                            (uint64_t)(uintptr_t)e->part_o.p ^ ((uint64_t)(uintptr_t)e->logits.p << 1) ^
                                ((uint64_t)(uintptr_t)e->logits_part.p << 2) ^ ((uint64_t)(uintptr_t)e->gathered.p << 3),
                            (uint64_t)(uintptr_t)e->mlp.p ^ ((uint64_t)(uintptr_t)e->act.p << 1) ^
                                ((uint64_t)(uintptr_t)e->emb.p << 2) ^ ((uint64_t)(uintptr_t)e->xd.p << 3)};
  GraphSlot *slot = nullptr, *victim = &e->graphs[0];
  for (GraphSlot &g : e->graphs) {
    if (memcmp(g.key, key, sizeof key) == 0 && g.last_use) slot = &g;
    if (g.last_use < victim->last_use) victim = &g;
  }
  e->graph_clock++;
  if (slot && slot->exec) {
    slot->last_use = e->graph_clock;
    FGCU_TRY(cudaGraphLaunch(slot->exec, e->stream));
    return 0;
  }
  if (!slot) {  // first sight: remember the key, run eagerly
    if (victim->exec) cudaGraphExecDestroy(victim->exec);
    victim->exec = nullptr;
    memcpy(victim->key, key, sizeof key);
    victim->last_use = e->graph_clock;
    return forward(e, m, err);
  }
  cudaGraph_t graph = nullptr;
  FGCU_TRY(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
  const int rc = forward(e, m, err);
  const cudaError_t end = cudaStreamEndCapture(e->stream, &graph);
  if (rc) {
    if (graph) cudaGraphDestroy(graph);
    return rc;
  }
  FGCU_TRY(end);
  const cudaError_t inst = cudaGraphInstantiate(&slot->exec, graph, 0);
  cudaGraphDestroy(graph);
  FGCU_TRY(inst);
  slot->last_use = e->graph_clock;
  FGCU_TRY(cudaGraphLaunch(slot->exec, e->stream));
  return 0;
}

}  // namespace

int fgcu::engine_prepare(fgcu_engine *e, const fg_batch *b, Meta *m, char *err) {
  if (!e->finalized) {
    snprintf(err, 512, "fg_step: engine is not finalized");
    return FG_ERR_INVALID_ARGUMENT;
  }
  const fgcu_model &M = e->m;
  const int group = (int)(M.num_heads / M.num_kv_heads);
  FGCU_CHECK(build_meta(e->meta, b, group, (int)M.num_kv_heads, e->num_sms, 0, e->stream, m, err));
  return ensure_workspaces(e, *m, err);
}

namespace {

// True the first time this rank runs a step of this shape (T, S, R, logprobs, attention tiling);
// kernels new to the device may load then. MoE steps always count as new: their per-expert
// GEMM shapes follow the routing.
bool new_shape(fgcu_engine *e, const Meta &m) {
  if (e->m.num_experts > 0) return true;
  uint64_t h = 1469598103934665603ull;
  const uint64_t parts[] = {(uint64_t)m.T, (uint64_t)m.S, (uint64_t)m.R, (uint64_t)m.R_next, (uint64_t)m.L, (uint64_t)m.splits,
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

int fgcu::engine_run(fgcu_engine *e, const Meta &m, fg_step_output *out, char *err) {
  const fgcu_model &M = e->m;
  const bool decode_only = m.T == m.S;  // one token per sequence
  e->lockstep = e->tp > 1 && new_shape(e, m);
  // MoE layers sync per layer (moe.cuh), so their steps are never captured
  if (decode_only && e->graphs_on && !e->prof && M.num_experts == 0) FGCU_CHECK(forward_graphed(e, m, err));
  else FGCU_CHECK(forward(e, m, err));
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
