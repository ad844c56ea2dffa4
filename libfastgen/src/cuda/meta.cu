// The step's metadata (build_meta): the batch packed into one pinned upload, attention tiles and
// key splits planned, the sample rows (sampled or scored, any number per sequence) and their
// masks laid out; and the activation
// workspaces a step of that shape needs (ensure_workspaces).
#include <string.h>

#include "core/row_drafts.h"
#include "cuda/engine.cuh"

namespace fgcu {
namespace {

// Sample row i of sequence s: a scored row (target >= 0) carries only its target; a sampled row
// its sequence's parameters, penalty and bias ranges, the drafts before it (first_token: s's
// first sampled row's token) and its mask's first word (-1 = none).
void pack_row(const fg_batch *b, int s, int i, int first_token, int vocab, SampleRow &r, bool *any_penalty) {
  memset(&r, 0, sizeof r);
  r.forced = b->row_targets ? b->row_targets[i] : -1;
  r.mask = -1;
  r.position = (long long)b->positions[b->row_tokens[i]] + 1;
  if (r.forced >= 0) {
    r.top_p = 1.f, r.repetition = 1.f;
    return;
  }
  r.temperature = b->temperature[s];
  r.top_p = b->top_p[s];
  r.top_k = b->top_k[s];
  r.min_p = b->min_p[s];
  r.seed = b->seed[s];
  r.presence = b->presence_penalty ? b->presence_penalty[s] : 0.f;
  r.frequency = b->frequency_penalty ? b->frequency_penalty[s] : 0.f;
  r.repetition = b->repetition_penalty ? b->repetition_penalty[s] : 1.f;
  if (b->penalty_indptr) r.pen_begin = b->penalty_indptr[s], r.pen_end = b->penalty_indptr[s + 1];
  if (b->penalty_prompt_lens) {
    const int n = b->penalty_prompt_lens[s];
    r.pen_prompt = n < 0 ? 0 : n < r.pen_end - r.pen_begin ? n : r.pen_end - r.pen_begin;
  }
  const fg::TokenRange d = fg::row_draft_tokens(b, first_token, i);
  r.draft_begin = d.begin, r.draft_end = d.end;
  if (b->logit_bias_indptr) r.bias_begin = b->logit_bias_indptr[s], r.bias_end = b->logit_bias_indptr[s + 1];
  if ((r.pen_end > r.pen_begin || r.draft_end > r.draft_begin) &&
      (r.repetition != 1.f || r.presence != 0.f || r.frequency != 0.f))
    *any_penalty = true;
  if (b->row_masks && b->row_masks[i] >= 0) r.mask = (long long)b->row_masks[i] * ((vocab + 31) / 32);
}

}  // namespace

int build_meta(MetaBuf &mb, const fg_batch *b, int group, int num_kv_heads, int num_sms,
               int splits, int vocab, cudaStream_t stream, Meta *m, char *err) {
  const int T = b->num_tokens, S = b->num_seqs;
  const int nb = b->block_indptr[S];
  const int np = b->penalty_indptr ? b->penalty_indptr[S] : 0;
  const int nbias = b->logit_bias_indptr ? b->logit_bias_indptr[S] : 0;
  const int R = b->num_rows;
  const size_t mask_words = b->num_masks > 0 ? (size_t)b->num_masks * ((vocab + 31) / 32) : 0;
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
  const size_t o_bidx = take(room(nb) * 4), o_lrows = take(R * 4);
  const size_t o_wide = take(tiles * sizeof(AttnTile)), o_narrow = take(tiles * sizeof(AttnTile));
  const size_t o_pen = take(room(np) * 4), o_bids = take(room(nbias) * 4), o_bvals = take(room(nbias) * 4);
  const size_t o_rows = take(R * sizeof(SampleRow));
  const size_t o_masks = take(mask_words * 4);  // last: no region a captured graph reads moves
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
  if (mask_words) memcpy(h + o_masks, b->masks, mask_words * 4);
  int *token_seq = hi(o_seq), *lrows = hi(o_lrows);
  SampleRow *rows = (SampleRow *)(h + o_rows);
  int max_narrow_ctx = 0;
  bool any_penalty = false;
  for (int s = 0; s < S; s++) {
    const int t0 = b->cu_seqlens[s], t1 = b->cu_seqlens[s + 1];
    for (int t = t0; t < t1; t++) token_seq[t] = s;
    if ((t1 - t0) * group <= 16 && b->context_lens[s] + (t1 - t0) > max_narrow_ctx)
      max_narrow_ctx = b->context_lens[s] + (t1 - t0);
    if (b->row_indptr) {
      const int first_token = fg::first_sampled_token(b, s);
      for (int i = b->row_indptr[s]; i < b->row_indptr[s + 1]; i++) {
        pack_row(b, s, i, first_token, vocab, rows[i], &any_penalty);
        lrows[i] = b->row_tokens[i];
      }
    }
  }
  AttnTile *wide = (AttnTile *)(h + o_wide), *narrow = (AttnTile *)(h + o_narrow);
  attn_make_tiles(S, b->cu_seqlens, group, wide, &m->num_wide, narrow, &m->num_narrow);
  m->splits = splits > 0 ? splits : attn_choose_splits(m->num_narrow, num_kv_heads, max_narrow_ctx, num_sms);
  FGCU_TRY(cudaMemcpyAsync(mb.dev, mb.host, off, cudaMemcpyHostToDevice, stream));

  char *d = mb.dev;
  m->T = T, m->S = S, m->R = R, m->L = b->num_logprobs, m->any_penalty = any_penalty;
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
  m->masks = (const uint32_t *)(d + o_masks);
  m->rows_host = rows;
  return 0;
}

int late_masks(MetaBuf &lb, const int32_t *row_masks, const uint32_t *masks, int num_masks,
               int vocab, cudaStream_t stream, Meta *m, char *err) {
  const int R = m->R;
  if (R == 0) return 0;
  const size_t words = (size_t)(vocab + 31) / 32;
  const size_t rows_bytes = (R * sizeof(SampleRow) + 15) / 16 * 16;
  const size_t mask_bytes = (size_t)num_masks * words * 4;
  const size_t bytes = rows_bytes + mask_bytes;
  if (bytes > lb.cap) {  // the previous finish waited for its upload: lb is free to rewrite
    release(lb);
    FGCU_TRY(cudaMallocHost(&lb.host, bytes * 2));
    FGCU_TRY(cudaMalloc(&lb.dev, bytes * 2));
    lb.cap = bytes * 2;
  }
  SampleRow *rows = (SampleRow *)lb.host;
  memcpy(rows, m->rows_host, R * sizeof(SampleRow));
  for (int r = 0; r < R; r++)
    if (rows[r].forced < 0 && row_masks[r] >= 0) rows[r].mask = (long long)row_masks[r] * (long long)words;
  if (mask_bytes) memcpy(lb.host + rows_bytes, masks, mask_bytes);
  FGCU_TRY(cudaMemcpyAsync(lb.dev, lb.host, bytes, cudaMemcpyHostToDevice, stream));
  m->rows = (const SampleRow *)lb.dev;
  m->masks = (const uint32_t *)(lb.dev + rows_bytes);
  return 0;
}

int ensure_workspaces(fgcu_rank *e, const Meta &m, char *err) {
  const fgcu_model &M = e->m;
  // mlp / act serve the dense MLP or the shared expert (ws_width); experts have MoeWork
  const size_t T = m.T, H = M.hidden_size, I = e->ws_width, od = e->o_dim();
  FGCU_CHECK(ensure(e->h, T * H * 4, "activations", err));
  FGCU_CHECK(ensure(e->x, T * H * 2, "activations", err));
  if (M.parallel && M.parallel_mlp_norm) FGCU_CHECK(ensure(e->x2, T * H * 2, "activations", err));
  if (M.mla) FGCU_CHECK(mla_work_reserve(e->mla, e->mla_model, m.T, m.splits, err));  // its own splits
  else FGCU_CHECK(ensure(e->qkv, T * e->qkv_rows * 2, "activations", err));
  FGCU_CHECK(ensure(e->attn, T * od * 2, "activations", err));
  FGCU_CHECK(ensure(e->mlp, T * e->ws_rows * 2, "activations", err));
  FGCU_CHECK(ensure(e->act, T * I * 2, "activations", err));
  if (M.sandwich_norms) FGCU_CHECK(ensure(e->y, T * H * 4, "activations", err));
  if (m.splits > 1 && !M.mla) {
    FGCU_CHECK(ensure(e->part_o, (size_t)m.splits * T * M.num_heads * M.head_dim * 4, "attention splits", err));
    FGCU_CHECK(ensure(e->part_lse, (size_t)m.splits * T * M.num_heads * 4, "attention splits", err));
    // split counters, one per narrow tile (at most one a token) and KV head: zeros when new
    const void *had = e->split_done.p;
    FGCU_CHECK(ensure(e->split_done, T * M.num_kv_heads * 4, "attention splits", err));
    if (e->split_done.p != had) FGCU_TRY(cudaMemsetAsync(e->split_done.p, 0, e->split_done.bytes, e->stream));
  }
  // A deferred norm's partial sums: one size for every pass (a graph keeps its address).
  if (m.T <= norm_defer_max_m())
    FGCU_CHECK(ensure(e->norm_part, (size_t)deferred_norm_blocks((int)H) * kDeferredNormMaxM * 4, "activations", err));
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
  if (e->any_fp8) FGCU_CHECK(rank_fp8_reserve(e, m.T, err));  // quantized activations
  if (M.num_experts > 0)
    FGCU_CHECK(moe_work_reserve(e->moe, m.T, (int)H, (int)M.moe_intermediate_size, (int)M.num_experts,
                                (int)M.experts_per_tok, M.act, err));
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

}  // namespace fgcu
