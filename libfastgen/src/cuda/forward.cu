// One forward pass on the device (forward), eager or replayed as a CUDA graph (forward_graphed).
// Its shared parts (forward.cuh) also serve mixed passes run as graph pieces (piecewise.cu).
//
//   h = embed(tokens) * embed_scale                     fp32 residual [T, H]
//   per layer:  x = norm(h (+ owed biases))             bf16 [T, H]
//               qkv = x Wqkv^T -> (+bias, qk-norm, RoPE, K/V -> cache)   one fused kernel
//                 (the cache bf16, or E4M3 with the layer's scales: --kv-cache-dtype fp8)
//                 (projections through linear.cuh: bf16 or FP8 weights)
//               attn = paged_attention(q, cache)        bf16 [T, nh * hd] (the layer's window)
//                 (MLA: attn = mla_forward(x), bf16 [T, nh * dv], its latent rows -> cache)
//               h += attn Wo^T                          (cuBLASLt / GEMV with beta = 1)
//               x = norm(h + o_bias) (sequential) ; h += down(act(x Wgate_up^T))
//                   (MoE layers: routed experts + shared expert)
//   logits = norm(h[last tokens]) Wlm^T (soft-capped) ; sample on the device ; copy back
// Output biases (o, down) are owed to the residual and folded into the next norm. At decode batch
// sizes a plain RMSNorm with nothing owed is folded into the GEMV after it instead (qkv, the gated
// MLP input: rms_fold.cuh), so x is never written there. Sandwich
// norms (Gemma 2/3) instead write each sublayer's output to y, and one kernel adds its post norm
// to h and normalizes h for the next sublayer.
//
// Tensor parallelism (tp > 1; tp.cu runs one thread per rank): each rank holds a slice of the
// heads and of the MLP columns, so its o and down GEMMs give a partial sum. Rank 0 adds its
// partial to h, the others write theirs in place of h, and one all-reduce (fp32) leaves every
// rank with h + the sum of partials (with sandwich norms, y is all-reduced before its post norm,
// which must see the whole sum). The embedding is sharded by vocab rows (a rank's missing
// rows read as zeros, then all-reduce); the LM head likewise, its logits all-gathered to rank 0,
// which alone samples.
#include <string.h>

#include "cuda/forward.cuh"

namespace fgcu {
namespace {

// FASTGEN_SKIP (knobs.h): op kinds left out of every pass, to time what each costs where it sits.
enum SkipOp : unsigned { kSkipNorm = 1, kSkipQkv = 2, kSkipRope = 4, kSkipAttn = 8, kSkipO = 16, kSkipGateUp = 32, kSkipDown = 64,
                       kSkipAny = 127 };
bool skipped(SkipOp op) {
  static const unsigned mask = [] {
    const char *names[] = {"norm", "qkv", "rope", "attn", "o", "gate_up", "down"};
    unsigned m = 0;
    const char *s = fg_knob_str(FG_KNOB_SKIP);
    while (*s) {
      const char *end = strchr(s, ',');
      const size_t n = end ? (size_t)(end - s) : strlen(s);
      for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && strncmp(s, names[i], n) == 0) m |= 1u << i;
      s += n + (end ? 1 : 0);
    }
    return m;
  }();
  return (mask & op) != 0;
}

// In-place fp32 sum over the ranks of x[0, n) (no-op at tp == 1). In a lockstep step, returns
// only once every rank has launched it (engine.cuh: lazy loading).
int all_reduce(fgcu_rank *e, float *x, size_t n, char *err) {
  if (e->tp == 1 || e->skip_collectives) return 0;
  const ncclResult_t r = e->nccl->all_reduce(x, x, n, kNcclFloat32, kNcclSum, e->comm, e->stream);
  if (r != 0) {
    snprintf(err, 512, "NCCL all-reduce on rank %d: %s", e->rank, e->nccl->error_string(r));
    return FG_ERR_DEVICE;
  }
  return e->lockstep ? e->rendezvous(e->group, err) : 0;
}

// logits [R, V] on rank 0 from every rank's columns logits_part [R, vocab_rows].
int gather_logits(fgcu_rank *e, int R, float *logits, char *err) {
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

}  // namespace

int forward_embed(fgcu_rank *e, const Meta &m, char *err) {
  const fgcu_model &M = e->m;
  const cudaStream_t st = e->stream;
  const int T = m.T, H = (int)M.hidden_size, D = (int)M.embed_dim;
  const bool lead = e->rank == 0;
  float *h = (float *)e->h.p;
  if (D != H) {  // OPT's project_in: h = bf16(embed rows) proj_in^T (+ pos_embed)
    float *ef = (float *)e->emb.p;
    bf16 *xd = (bf16 *)e->xd.p;  // bf16 rows of width D
    FGCU_CHECK(embed_tokens(e->embed, M.embed_scale, nullptr, m.token_ids, m.positions, T, D, (int)e->vocab_begin,
                            (int)e->vocab_rows, ef, st, err));
    FGCU_CHECK(all_reduce(e, ef, (size_t)T * D, err));
    FGCU_CHECK(norm_rows(ef, nullptr, T, D, nullptr, nullptr, false, kNormNone, nullptr, nullptr, M.norm_eps, xd, st,
                         err));
    FGCU_CHECK(gemm(e->gemm, xd, e->proj_in, h, true, false, T, H, D, st, err));
    if (e->pos_embed) FGCU_CHECK(add_pos_embed(e->pos_embed, m.positions, T, H, h, st, err));
  } else {
    FGCU_CHECK(embed_tokens(e->embed, M.embed_scale, lead ? e->pos_embed : nullptr, m.token_ids, m.positions, T, H,
                            (int)e->vocab_begin, (int)e->vocab_rows, h, st, err));
    FGCU_CHECK(all_reduce(e, h, (size_t)T * H, err));
  }
  profiler_mark(e->prof, st, "embed");
  return 0;
}

void pass_args(fgcu_rank *e, const Meta &m, AttnArgs *ap, RopeArgs *rp) {
  const fgcu_model &M = e->m;
  const int T = m.T, H = (int)M.hidden_size, od = (int)e->o_dim();
  const int nh = (int)M.num_heads, nkv = (int)M.num_kv_heads, hd = (int)M.head_dim;
  AttnArgs &a = *ap;
  memset(&a, 0, sizeof a);
  a.q_stride = e->qkv_rows;
  a.out = (bf16 *)e->attn.p;
  a.out_stride = nh * hd;
  a.cu_seqlens = m.cu_seqlens, a.context_lens = m.context_lens;
  a.block_indptr = m.block_indptr, a.block_indices = m.block_indices, a.token_seq = m.token_seq;
  a.wide = m.wide, a.narrow = m.narrow, a.num_wide = m.num_wide, a.num_narrow = m.num_narrow;
  a.splits = m.splits, a.part_o = (float *)e->part_o.p, a.part_lse = (float *)e->part_lse.p;
  a.split_done = m.splits > 1 && attn_merge_in_kernel() ? (int *)e->split_done.p : nullptr;
  a.num_tokens = T, a.num_heads = nh, a.num_kv_heads = nkv, a.head_dim = hd;
  a.block_size = e->block_size;
  a.scale = M.attn_scale, a.softcap = M.attn_logit_softcap;
  a.kv_fp8 = e->kv_fp8;
  RopeArgs &ra = *rp;
  memset(&ra, 0, sizeof ra);
  ra.qkv = (bf16 *)e->qkv.p;
  ra.positions = m.positions, ra.token_seq = m.token_seq;
  ra.block_indptr = m.block_indptr, ra.block_indices = m.block_indices;
  ra.eps = M.norm_eps;
  ra.nh = nh, ra.nkv = nkv, ra.hd = hd, ra.rot = M.rotary_dim, ra.block_size = e->block_size;
  ra.interleaved = M.rope_interleaved;
  ra.kv_fp8 = e->kv_fp8;
  // FASTGEN_PREFETCH_O: MiB of o's weights into L2 during RoPE and attention (decode-sized passes).
  const size_t o_bytes = (size_t)H * od * (e->layers[0].o.fp8() ? 1 : 2);
  const int o_mib = fg_knob_int(FG_KNOB_PREFETCH_O);
  const size_t o_prefetch = T <= 16 && o_mib > 0 ? (size_t)o_mib << 20 : 0;
  ra.prefetch_bytes = (o_prefetch < o_bytes ? o_prefetch : o_bytes) & ~(size_t)15;
}

LayerAttn layer_attn(const fgcu_rank *e, int64_t l) {
  const fgcu_model &M = e->m;
  LayerAttn la;
  // K and V planes of the layer; MLA: one plane of latent rows (kc). FP8: the layer's scales.
  la.kc = e->kv_plane(l, 0), la.vc = M.mla ? nullptr : e->kv_plane(l, 1);
  la.k_scale = e->kv_fp8 ? e->k_scales[l] : 1.f, la.v_scale = e->kv_fp8 ? e->v_scales[l] : 1.f;
  // Sliding layers: the window, and their own plain RoPE table (factor 1) when the model has one.
  const bool sliding = M.layer_sliding[l] != 0, own_table = sliding && e->sliding_inv_freq;
  la.inv_freq = own_table ? e->sliding_inv_freq : e->inv_freq;
  la.attn_factor = own_table ? 1.f : M.rope_attention_factor;
  la.window = sliding ? M.sliding_window : 0;
  return la;
}

void layer_rope_args(const fgcu_rank *e, int64_t l, const LayerAttn &la, RopeArgs &ra) {
  const LayerW &w = e->layers[l];
  ra.bias = w.qkv_b;
  ra.inv_freq = la.inv_freq;
  ra.attn_factor = la.attn_factor;
  ra.q_norm = w.q_norm, ra.k_norm = w.k_norm;
  ra.k_cache = la.kc, ra.v_cache = la.vc;
  ra.k_scale = la.k_scale, ra.v_scale = la.v_scale;
  ra.prefetch = ra.prefetch_bytes ? w.o.p : nullptr;
}

int layer_attend(fgcu_rank *e, const LayerAttn &la, RopeArgs &ra, AttnArgs &a, bool rope_done, char *err) {
  const cudaStream_t st = e->stream;
  a.q = ra.qkv, a.k_cache = la.kc, a.v_cache = la.vc;
  if (!rope_done && !skipped(kSkipRope)) FGCU_CHECK(qkv_rope_kv_write(ra, a.num_tokens, st, err));
  profiler_mark(e->prof, st, "rope + kv write");
  a.k_scale = la.k_scale, a.v_scale = la.v_scale;
  a.window = la.window;
  if (!skipped(kSkipAttn)) FGCU_CHECK(paged_attention(a, st, err));
  profiler_mark(e->prof, st, "attention");
  return 0;
}

int forward_logits(fgcu_rank *e, const Meta &m, const float *owed_a, const float *owed_b, char *err) {
  if (m.R == 0) return 0;
  const fgcu_model &M = e->m;
  const cudaStream_t st = e->stream;
  const int H = (int)M.hidden_size, D = (int)M.embed_dim;
  const NormOp op = M.norm_layer ? kNormLayer : kNormRms;
  float *h = (float *)e->h.p;
  bf16 *xf = (bf16 *)e->xf.p, *xd = (bf16 *)e->xd.p;
  float *logits = (float *)e->logits.p;
  FGCU_CHECK(norm_rows(h, m.logit_rows, m.R, H, owed_a, owed_b, false, M.final_norm ? op : kNormNone,
                       e->final_norm, e->final_norm_b, M.norm_eps, xf, st, err));
  const int Vr = (int)e->vocab_rows;
  float *cols = e->tp > 1 ? (float *)e->logits_part.p : logits;  // [R, Vr]
  if (D != H) FGCU_CHECK(gemm(e->gemm, xf, e->proj_out, xd, false, false, m.R, D, H, st, err));  // project_out
  FGCU_CHECK(gemm(e->gemm, D != H ? xd : xf, e->lm_head, cols, true, false, m.R, Vr, D, st, err));
  if (e->lm_head_b) FGCU_CHECK(add_bias_rows(cols, e->lm_head_b, m.R, Vr, st, err));
  if (e->tp > 1) FGCU_CHECK(gather_logits(e, m.R, logits, err));
  // Every consumer (sampling, logprobs, returned logits) reads the capped logits; rank 0 only
  // holds them whole.
  if (M.final_logit_softcap > 0.f && e->rank == 0)
    FGCU_CHECK(softcap(logits, (size_t)m.R * M.vocab_size, M.final_logit_softcap, st, err));
  profiler_mark(e->prof, st, "final norm + lm head");
  return 0;
}

int forward(fgcu_rank *e, const Meta &m, char *err) {
  const fgcu_model &M = e->m;
  const cudaStream_t st = e->stream;
  const int T = m.T, H = (int)M.hidden_size, I = (int)M.intermediate_size, od = (int)e->o_dim();
  const NormOp op = M.norm_layer ? kNormLayer : kNormRms;
  const float eps = M.norm_eps;
  float *h = (float *)e->h.p;
  bf16 *x = (bf16 *)e->x.p, *x2 = (bf16 *)e->x2.p, *qkv = (bf16 *)e->qkv.p;
  bf16 *attn = (bf16 *)e->attn.p, *mlp = (bf16 *)e->mlp.p, *act = (bf16 *)e->act.p;

  Profiler *pr = e->prof;
  const Gemms g = e->gemms();  // projections by dtype (linear.cuh); embed / LM head stay bf16
  const bool lead = e->rank == 0;  // rank 0 adds what every rank holds whole (h, pos_embed)
  FGCU_CHECK(forward_embed(e, m, err));
  AttnArgs a;
  RopeArgs ra;
  pass_args(e, m, &a, &ra);
  const MlaStep ms = {T, m.splits, e->block_size, m.positions, m.token_seq, m.cu_seqlens, m.context_lens,
                      m.block_indptr, m.block_indices};

  // Sandwich norms: each sublayer writes y (after its all-reduce), and post_norm_add adds its
  // post norm to h and normalizes h for the next sublayer in the same kernel (x_ready).
  const bool sandwich = M.sandwich_norms;
  // Layers whose norms may fold into the GEMV after them: plain pre-norm RMSNorm whose x feeds
  // only that GEMV (not MLA's projections, not a parallel MLP).
  const bool rms_folds = op == kNormRms && !M.post_norm && !sandwich && !M.parallel && !M.mla;
  // FASTGEN_NORM_DEFER where the small-M kernel runs (decode at 1-16 tokens, one GPU): the o and
  // down GEMVs write the next norm's x = bf16(h * w) and partial sums of h^2, and the qkv / gated
  // MLP GEMV after them scales its sums by the norm (rms_fold.cuh DeferredNorm): no norm kernel.
  const bool defer_small = rms_folds && e->tp == 1 && T <= norm_defer_max_m() && e->norm_part.p &&
                           !skipped(kSkipAny);
  float *norm_part = (float *)e->norm_part.p;
  const DeferredNorm dn_read = {norm_part, deferred_norm_blocks(H), eps};
  auto dn_write = [&](const float *w_next) {
    DeferredNorm d;
    d.x_out = x, d.w_next = w_next, d.part_out = norm_part;
    return d;
  };
  // Layer l's attention norm deferred: the down GEMV before it and its qkv GEMV run the small-M
  // kernel, and nothing is owed to h between them. Its MLP norm: likewise o and the gated input.
  auto attn_deferred = [&](int64_t l) {
    if (!defer_small || l == 0 || l >= M.num_layers) return false;
    const LayerW &p = e->layers[l - 1];
    return !e->moe_layer(l - 1) && !p.down_b && linear_small_takes(p.down, T, I) &&
           linear_small_takes(e->layers[l].qkv, T, H);
  };
  auto mlp_deferred = [&](int64_t l) {
    const LayerW &w = e->layers[l];
    return defer_small && !w.o_b && !e->moe_layer(l) && M.act >= 0 && M.act <= 2 && e->mlp_rows % 2 == 0 &&
           linear_small_takes(w.o, T, od) && linear_small_takes(w.mlp_in, T, H);
  };
  float *y = (float *)e->y.p;
  bool x_ready = false;
  const float *owed_a = nullptr, *owed_b = nullptr;  // biases not yet added to h
  for (int64_t l = 0; l < M.num_layers; l++) {
    const LayerW &w = e->layers[l];
    const LayerAttn la = layer_attn(e, l);
    const bool post = M.post_norm;  // x = bf16(h): layer 0 here, later layers from the last norm
    const bool attn_def = attn_deferred(l);  // x = bf16(h * w) from the down GEMV before
    const bool fold_attn = rms_folds && !attn_def && !owed_a && !owed_b && linear_rms_fits(w.qkv, T, H);
    // FASTGEN_NORM_DEFER: the qkv GEMV reads h and applies the norm's scale to its sums
    const bool defer_attn = rms_folds && !fold_attn && !owed_a && !owed_b && w.qkv.dtype == kWeightBf16 &&
                            gemv_rms_deferred_takes(T, H) && !skipped(kSkipQkv);
    const RmsRows attn_rms = {h, w.attn_norm, eps};
    if (!post && !x_ready && !fold_attn && !defer_attn && !attn_def && !skipped(kSkipNorm))  // folded: qkv's GEMV normalizes h itself
      FGCU_CHECK(norm_rows(h, nullptr, T, H, owed_a, owed_b, true, op, w.attn_norm, w.attn_norm_b, eps, x, st, err));
    else if (post && l == 0) FGCU_CHECK(norm_rows(h, nullptr, T, H, nullptr, nullptr, false, kNormNone, nullptr, nullptr, eps, x, st, err));
    profiler_mark(pr, st, "norm");
    owed_a = owed_b = nullptr;
    x_ready = false;
    const bool two_norms = M.parallel && M.parallel_mlp_norm;
    if (two_norms)
      FGCU_CHECK(norm_rows(h, nullptr, T, H, nullptr, nullptr, false, op, w.mlp_norm, w.mlp_norm_b, eps, x2, st, err));
    if (M.mla) {
      const MlaLayer ml = {&w.qkv, &w.q_mla, w.q_a_norm, w.kv_a_norm, w.w_uk, w.w_uvT,
                           la.kc, la.inv_freq, la.attn_factor, la.window, e->kv_fp8, la.k_scale};
      FGCU_CHECK(mla_forward(g, e->mla, e->mla_model, ml, ms, x, attn, st, err));
      profiler_mark(pr, st, "mla attention");
    } else {
      // RoPE and the K/V write in the qkv GEMV's epilogue (FASTGEN_QKV_ROPE): the one-token bf16
      // GEMV at batch 1, the small-M kernel where it takes the pass (bf16 at 2-16 tokens, FP8 at
      // its token counts; x normalized by the norm kernel or deferred into it)
      layer_rope_args(e, l, la, ra);
      const bool fuse_ok = !fold_attn && !skipped(kSkipQkv) && !skipped(kSkipRope);
      const bool rope_in_gemv = fuse_ok && !attn_def && w.qkv.dtype == kWeightBf16 && gemv_one_token() &&
                                qkv_gemv_rope_takes(ra, T, e->qkv_rows, H);
      const bool rope_small = fuse_ok && !rope_in_gemv && !defer_attn && linear_small_rope_takes(w.qkv, ra, T, e->qkv_rows, H);
      if (fold_attn) FGCU_CHECK(linear_rms(attn_rms, w.qkv, qkv, T, e->qkv_rows, H, st, err));
      else if (rope_small) FGCU_CHECK(linear_small_rope(x, w.qkv, ra, T, e->qkv_rows, H, attn_def ? dn_read : DeferredNorm(), st, err));
      else if (attn_def) FGCU_CHECK(linear_small(x, w.qkv, qkv, false, false, -1, nullptr, T, e->qkv_rows, H, dn_read, st, err));
      else if (rope_in_gemv) FGCU_CHECK(qkv_gemv_rope(x, defer_attn ? &attn_rms : nullptr, (const bf16 *)w.qkv.p, ra, e->qkv_rows, H, st, err));
      else if (defer_attn) FGCU_CHECK(gemv_rms_deferred(attn_rms, (const bf16 *)w.qkv.p, nullptr, -1, qkv, T, e->qkv_rows, H, st, err));
      else if (!skipped(kSkipQkv)) FGCU_CHECK(linear(g, x, w.qkv, qkv, false, false, T, e->qkv_rows, H, st, err));
      profiler_mark(pr, st, rope_in_gemv || rope_small ? "gemm qkv + rope + kv write" : "gemm qkv");
      FGCU_CHECK(layer_attend(e, la, ra, a, rope_in_gemv || rope_small, err));
    }
    const bool mlp_def = mlp_deferred(l);
    if (sandwich) {  // h += post_attn_norm(o + o_bias); x = mlp_norm(h)
      FGCU_CHECK(linear(g, attn, w.o, y, true, false, T, H, od, st, err));
      FGCU_CHECK(all_reduce(e, y, (size_t)T * H, err));
      FGCU_CHECK(post_norm_add(h, y, w.o_b, w.post_attn_norm, w.mlp_norm, T, H, eps, x, st, err));
    } else if (mlp_def) {  // writes the MLP norm's x and partial sums
      FGCU_CHECK(linear_small(attn, w.o, h, true, lead, -1, nullptr, T, H, od, dn_write(w.mlp_norm), st, err));
    } else if (!skipped(kSkipO)) {
      FGCU_CHECK(linear(g, attn, w.o, h, true, lead, T, H, od, st, err));
    }
    profiler_mark(pr, st, "gemm o");
    const bf16 *mlp_x = x;
    const bool fold_mlp = rms_folds && !mlp_def && !w.o_b && !e->moe_layer(l) &&
                          linear_gated_rms_fits(w.mlp_in, M.act, T, e->mlp_rows, H);
    const bool defer_mlp = rms_folds && !fold_mlp && !mlp_def && !w.o_b && !e->moe_layer(l) && w.mlp_in.dtype == kWeightBf16 &&
                           M.act >= 0 && M.act <= 2 && e->mlp_rows % 2 == 0 && gemv_rms_deferred_takes(T, H) &&
                           !skipped(kSkipGateUp);
    if (M.parallel) {  // the MLP's partial joins the attention's: one all-reduce for both
      mlp_x = two_norms ? x2 : x;
      owed_a = w.o_b;
    } else if (!sandwich) {
      FGCU_CHECK(all_reduce(e, h, (size_t)T * H, err));
      if (post) FGCU_CHECK(norm_rows_in_place(h, T, H, w.o_b, op, w.attn_norm, w.attn_norm_b, eps, x, st, err));
      else if (!fold_mlp && !defer_mlp && !mlp_def && !skipped(kSkipNorm)) FGCU_CHECK(norm_rows(h, nullptr, T, H, w.o_b, nullptr, true, op, w.mlp_norm, w.mlp_norm_b, eps, x, st, err));
      profiler_mark(pr, st, "norm");
    }
    // The MLP adds its (partial) output to h, or with sandwich norms writes it to y.
    float *out = sandwich ? y : h;
    const bool acc = !sandwich && (lead || M.parallel);
    const float *down_b = w.down_b;  // null in MoE layers: expert biases are weighted inside
    // The dense MLP's down GEMV; it writes the next layer's attention norm's x where that is deferred.
    auto down = [&]() -> int {
      if (skipped(kSkipDown)) return 0;
      if (!attn_deferred(l + 1)) return linear(g, act, w.down, out, true, acc, T, H, I, st, err);
      return linear_small(act, w.down, out, true, acc, -1, nullptr, T, H, I, dn_write(e->layers[l + 1].attn_norm), st, err);
    };
    if (e->moe_layer(l)) {  // expert biases on rank 0 only, so the all-reduce adds them once
      MoeLayer ml;
      ml.router = w.router;
      ml.mlp_in = w.ex_in, ml.down = w.ex_down;
      ml.mlp_in_b = M.mlp_bias ? w.ex_in_b : nullptr;
      ml.down_b = M.mlp_bias && lead ? w.ex_down_b : nullptr;
      MoeRoute route;
      route.num_experts = (int)M.num_experts, route.top_k = (int)M.experts_per_tok;
      route.renormalize = M.moe_renormalize != 0;
      if (M.moe_num_groups > 1) route.num_groups = M.moe_num_groups, route.topk_groups = M.moe_topk_groups;
      if (M.moe_routed_scale > 0.f) route.scale = M.moe_routed_scale;  // 0: unset, 1
      FGCU_CHECK(moe_forward(g, e->moe, ml, mlp_x, out, acc, T, H, (int)M.moe_intermediate_size, route, M.act, st,
                             err));
      if (w.sh_in.p) {
        SharedExpert se = {w.sh_in, w.sh_down, w.sh_gate, (int)M.shared_expert_intermediate_size};
        FGCU_CHECK(shared_expert_forward(g, se, mlp_x, out, T, H, M.act, mlp, act, st, err));
      }
      profiler_mark(pr, st, "moe");
    } else if (mlp_def) {  // x and the partial sums from the o GEMV
      FGCU_CHECK(linear_small(x, w.mlp_in, act, false, false, M.act, w.mlp_in_b, T, e->mlp_rows, H, dn_read, st, err));
      profiler_mark(pr, st, "gemm gate_up + act");
      FGCU_CHECK(down());
    } else if (fold_mlp || defer_mlp) {
      const RmsRows mlp_rms = {h, w.mlp_norm, eps};
      if (fold_mlp) FGCU_CHECK(linear_gated_rms(mlp_rms, w.mlp_in, w.mlp_in_b, M.act, act, T, e->mlp_rows, H, st, err));
      else FGCU_CHECK(gemv_rms_deferred(mlp_rms, (const bf16 *)w.mlp_in.p, w.mlp_in_b, M.act, act, T, e->mlp_rows, H, st, err));
      profiler_mark(pr, st, "gemm gate_up + act");
      FGCU_CHECK(down());
    } else {
      if (skipped(kSkipGateUp)) {  // FASTGEN_SKIP: leave act as it is
      } else if (linear_gated(mlp_x, w.mlp_in, w.mlp_in_b, M.act, act, T, e->mlp_rows, H, st)) {
        FGCU_LAUNCHED("gemv_gated");
        profiler_mark(pr, st, "gemm gate_up + act");
      } else {
        FGCU_CHECK(linear(g, mlp_x, w.mlp_in, mlp, false, false, T, e->mlp_rows, H, st, err));
        profiler_mark(pr, st, "gemm gate_up");
        FGCU_CHECK(activation(mlp, w.mlp_in_b, act, T, I, (ActKind)M.act, st, err));
        profiler_mark(pr, st, "activation");
      }
      FGCU_CHECK(down());
    }
    FGCU_CHECK(all_reduce(e, out, (size_t)T * H, err));
    profiler_mark(pr, st, "gemm down");
    if (sandwich) {  // h += post_mlp_norm(mlp + down_bias); x = the next layer's attn_norm(h)
      const float *next = l + 1 < M.num_layers ? e->layers[l + 1].attn_norm : nullptr;
      FGCU_CHECK(post_norm_add(h, y, down_b, w.post_mlp_norm, next, T, H, eps, x, st, err));
      x_ready = next != nullptr;
    } else if (post) {
      FGCU_CHECK(norm_rows_in_place(h, T, H, down_b, op, w.mlp_norm, w.mlp_norm_b, eps, x, st, err));
    } else {
      owed_b = down_b;
    }
  }
  return forward_logits(e, m, owed_a, owed_b, err);
}

// Runs forward() for a decode-only batch through a cached CUDA graph: the first time a key is
// seen it runs eagerly (plans cuBLASLt, sets kernel attributes), the second time it is captured.
int forward_graphed(fgcu_rank *e, const Meta &m, char *err) {
  const uint64_t key[10] = {(uint64_t)m.T, (uint64_t)m.S, (uint64_t)m.R,
                            ((uint64_t)m.num_wide << 32) | (uint64_t)m.num_narrow, (uint64_t)m.splits,
                            m.layout, (uint64_t)(uintptr_t)e->meta.dev,
                            (uint64_t)(uintptr_t)e->h.p ^ ((uint64_t)(uintptr_t)e->qkv.p << 1) ^
                                ((uint64_t)(uintptr_t)e->y.p << 2),
                            (uint64_t)(uintptr_t)e->part_o.p ^ ((uint64_t)(uintptr_t)e->logits.p << 1) ^
                                ((uint64_t)(uintptr_t)e->split_done.p << 4) ^
                                ((uint64_t)(uintptr_t)e->logits_part.p << 2) ^ ((uint64_t)(uintptr_t)e->gathered.p << 3),
                            (uint64_t)(uintptr_t)e->mlp.p ^ ((uint64_t)(uintptr_t)e->act.p << 1) ^
                                ((uint64_t)(uintptr_t)e->emb.p << 2) ^ ((uint64_t)(uintptr_t)e->xd.p << 3) ^
                                (fp8_workspace_key(e->fp8) << 4) ^ (mla_work_key(e->mla) << 5)};
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
  FGCU_CHECK(capture_graph(e->stream, [&] { return forward(e, m, err); }, &slot->exec, err));
  slot->last_use = e->graph_clock;
  FGCU_TRY(cudaGraphLaunch(slot->exec, e->stream));
  return 0;
}

}  // namespace fgcu
