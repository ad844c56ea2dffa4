// fastgen.h fg_run_op on the CUDA backend: each op of core/op_hooks.h through the kernel the
// forward pass launches for it, on device 0 over host buffers. Inputs the kernel reads as bf16
// are rounded to bf16 on the way up; bf16 results come back as floats. The core checked every
// argument (core/op_hooks.cpp).
#include "cuda/hook_staging.cuh"
#include "cuda/ops.cuh"

using namespace fgcu;

namespace {

typedef void *const *Bufs;
const float *hf(Bufs b, int i) { return (const float *)b[i]; }
const int32_t *hi(Bufs b, int i) { return (const int32_t *)b[i]; }

// The paged cache of the hooks: host [nb, bs, nkv, hd] fp32 <-> device [nb, nkv, bs, hd] bf16.
bf16 *cache_up(Scope &sc, const float *h, int nb, int bs, int nkv, int hd) {
  const size_t n = (size_t)nb * bs * nkv * hd;
  float *t = (float *)sc.halloc(n * 4);
  if (!t) return nullptr;
  for (size_t blk = 0; blk < (size_t)nb; blk++)
    for (int s = 0; s < bs; s++)
      for (int kh = 0; kh < nkv; kh++)
        memcpy(t + ((blk * nkv + kh) * bs + s) * hd, h + ((blk * bs + s) * nkv + kh) * hd, hd * 4);
  return sc.bf(t, n);
}
void cache_down(Scope &sc, float *h, const bf16 *d, int nb, int bs, int nkv, int hd) {
  const size_t n = (size_t)nb * bs * nkv * hd;
  float *t = (float *)sc.halloc(n * 4);
  sc.down_bf(t, d, n);
  if (sc.error != cudaSuccess) return;
  for (size_t blk = 0; blk < (size_t)nb; blk++)
    for (int s = 0; s < bs; s++)
      for (int kh = 0; kh < nkv; kh++)
        memcpy(h + ((blk * bs + s) * nkv + kh) * hd, t + ((blk * nkv + kh) * bs + s) * hd, hd * 4);
}

int rope(Scope &sc, const int32_t *d, const float *p, Bufs b, char *err) {
  const int T = d[0], nh = d[1], nkv = d[2], hd = d[3], rot = d[4], bs = d[5], nb = d[6];
  const size_t W = (size_t)(nh + 2 * nkv) * hd;
  // Each token its own sequence, whose table is offset so that entry positions[t] / bs is
  // blocks[t]: slot positions[t] % bs of that block (as the CPU twin reads it).
  int32_t *seq = (int32_t *)sc.halloc(T * 4), *indptr = (int32_t *)sc.halloc(T * 4);
  for (int t = 0; seq && indptr && t < T; t++) seq[t] = t, indptr[t] = t - hi(b, 1)[t] / bs;
  RopeArgs a;
  memset(&a, 0, sizeof a);
  a.qkv = sc.bf(hf(b, 0), T * W);
  a.bias = sc.f32(hf(b, 4), W);
  a.positions = sc.i32(hi(b, 1), T);
  a.token_seq = sc.i32(seq, T);
  a.block_indptr = sc.i32(indptr, T);
  a.block_indices = sc.i32(hi(b, 2), T);
  a.inv_freq = sc.f64((const double *)b[3], rot / 2);
  a.attn_factor = p[0];
  a.q_norm = sc.f32(hf(b, 5), hd), a.k_norm = sc.f32(hf(b, 6), hd);
  a.eps = p[1];
  a.nh = nh, a.nkv = nkv, a.hd = hd, a.rot = rot, a.block_size = bs;
  a.k_cache = cache_up(sc, hf(b, 7), nb, bs, nkv, hd);
  a.v_cache = cache_up(sc, hf(b, 8), nb, bs, nkv, hd);
  FGCU_CHECK(sc.status("rope hook", err));
  FGCU_CHECK(qkv_rope_kv_write(a, T, sc.stream, err));
  sc.down_bf((float *)b[0], a.qkv, T * W);
  cache_down(sc, (float *)b[7], a.k_cache, nb, bs, nkv, hd);
  cache_down(sc, (float *)b[8], a.v_cache, nb, bs, nkv, hd);
  return sc.status("rope hook", err);
}

// FG_OP_NORM (norm_rows) and FG_OP_POST_NORM (norm_rows_in_place), whose buffers are NORM's
// without rows and add_b: h, add, w, b, out.
int norm(Scope &sc, const int32_t *d, const float *p, Bufs b, bool post, char *err) {
  const int R = d[0], H = d[1], src = post ? R : d[2], skip = post ? 2 : 0;
  const NormOp kind = (NormOp)(post ? d[2] : d[3]);
  const size_t hn = (size_t)src * H, on = (size_t)R * H;
  float *h = sc.f32(hf(b, 0), hn);
  const int *rows = post ? nullptr : sc.i32(hi(b, 1), R);
  const float *add_a = sc.f32(hf(b, post ? 1 : 2), H), *add_b = post ? nullptr : sc.f32(hf(b, 3), H);
  const float *w = sc.f32(hf(b, 4 - skip), H), *bias = sc.f32(hf(b, 5 - skip), H);
  bf16 *out = (bf16 *)sc.dalloc(on * 2);
  FGCU_CHECK(sc.status("norm hook", err));
  if (post) FGCU_CHECK(norm_rows_in_place(h, R, H, add_a, kind, w, bias, p[0], out, sc.stream, err));
  else FGCU_CHECK(norm_rows(h, rows, R, H, add_a, add_b, d[4] != 0, kind, w, bias, p[0], out, sc.stream, err));
  sc.down_f32((float *)b[0], h, hn);
  sc.down_bf((float *)b[6 - skip], out, on);
  return sc.status("norm hook", err);
}

int sandwich_norm(Scope &sc, const int32_t *d, const float *p, Bufs b, char *err) {
  const int R = d[0], H = d[1];
  const size_t n = (size_t)R * H;
  float *h = sc.f32(hf(b, 0), n);
  const float *y = sc.f32(hf(b, 1), n), *bias = sc.f32(hf(b, 2), H);
  const float *w_post = sc.f32(hf(b, 3), H), *w_next = sc.f32(hf(b, 4), H);
  bf16 *out = (bf16 *)sc.dalloc(n * 2);
  FGCU_CHECK(sc.status("sandwich_norm hook", err));
  FGCU_CHECK(post_norm_add(h, y, bias, w_post, w_next, R, H, p[0], out, sc.stream, err));
  sc.down_f32((float *)b[0], h, n);
  if (w_next) sc.down_bf((float *)b[5], out, n);
  return sc.status("sandwich_norm hook", err);
}

int activation_op(Scope &sc, const int32_t *d, Bufs b, char *err) {
  const int T = d[0], I = d[1];
  const ActKind kind = (ActKind)d[2];
  const size_t cols = kind <= kGatedGeluTanh ? 2 * (size_t)I : I;
  const bf16 *in = sc.bf(hf(b, 0), T * cols);
  const float *bias = sc.f32(hf(b, 1), cols);
  bf16 *out = (bf16 *)sc.dalloc((size_t)T * I * 2);
  FGCU_CHECK(sc.status("activation hook", err));
  FGCU_CHECK(activation(in, bias, out, T, I, kind, sc.stream, err));
  sc.down_bf((float *)b[2], out, (size_t)T * I);
  return sc.status("activation hook", err);
}

int embed(Scope &sc, const int32_t *d, const float *p, Bufs b, char *err) {
  const int T = d[0], H = d[1];
  const bf16 *table = sc.bf(hf(b, 0), (size_t)d[3] * H);
  const int *ids = sc.i32(hi(b, 1), T), *positions = sc.i32(hi(b, 2), T);
  const float *pos_embed = sc.f32(hf(b, 3), (size_t)d[4] * H);
  float *h = (float *)sc.dalloc((size_t)T * H * 4);
  FGCU_CHECK(sc.status("embed hook", err));
  FGCU_CHECK(embed_tokens(table, p[0], pos_embed, ids, positions, T, H, d[2], d[3], h, sc.stream, err));
  sc.down_f32((float *)b[4], h, (size_t)T * H);
  return sc.status("embed hook", err);
}

int pos_embed(Scope &sc, const int32_t *d, Bufs b, char *err) {
  const int T = d[0], H = d[1];
  const float *table = sc.f32(hf(b, 0), (size_t)d[2] * H);
  const int *positions = sc.i32(hi(b, 1), T);
  float *h = sc.f32(hf(b, 2), (size_t)T * H);
  FGCU_CHECK(sc.status("pos_embed hook", err));
  FGCU_CHECK(add_pos_embed(table, positions, T, H, h, sc.stream, err));
  sc.down_f32((float *)b[2], h, (size_t)T * H);
  return sc.status("pos_embed hook", err);
}

int bias_rows(Scope &sc, const int32_t *d, Bufs b, char *err) {
  const size_t n = (size_t)d[0] * d[1];
  float *y = sc.f32(hf(b, 0), n);
  const float *bias = sc.f32(hf(b, 1), d[1]);
  FGCU_CHECK(sc.status("bias_rows hook", err));
  FGCU_CHECK(add_bias_rows(y, bias, d[0], d[1], sc.stream, err));
  sc.down_f32((float *)b[0], y, n);
  return sc.status("bias_rows hook", err);
}

int softcap_op(Scope &sc, const int32_t *d, const float *p, Bufs b, char *err) {
  float *x = sc.f32(hf(b, 0), d[0]);
  FGCU_CHECK(sc.status("softcap hook", err));
  FGCU_CHECK(softcap(x, d[0], p[0], sc.stream, err));
  sc.down_f32((float *)b[0], x, d[0]);
  return sc.status("softcap hook", err);
}

// The device's expert rows (offsets padded to pad) back into the CPU's compact lists: expert e's
// slots at expert_offsets[e] + (row - its padded start). A slot whose row falls outside its
// expert's rows, or an expert start off the pad, is left -1, for the test to see.
int moe_route_op(Scope &sc, const int32_t *d, const float *p, Bufs b, char *err) {
  const int T = d[0], E = d[1], k = d[2], pad = d[4], N = T * k;
  const float *logits = sc.f32(hf(b, 0), (size_t)T * E);
  int *ids = (int *)sc.dalloc(N * 4), *meta = (int *)sc.dalloc((2 * E + 1) * 4), *row_of = (int *)sc.dalloc(N * 4);
  float *weights = (float *)sc.dalloc(N * 4);
  int32_t *hmeta = (int32_t *)sc.halloc((2 * E + 1) * 4), *hrow = (int32_t *)sc.halloc(N * 4);
  FGCU_CHECK(sc.status("moe_route hook", err));
  MoeRoute route;
  route.num_experts = E, route.top_k = k, route.renormalize = d[3] != 0;
  route.num_groups = d[5], route.topk_groups = d[6], route.scale = p[0];
  FGCU_CHECK(moe_route(logits, T, route, pad, ids, weights, meta, row_of, sc.stream, err));
  int32_t *ids_out = (int32_t *)b[1], *offsets = (int32_t *)b[3], *slots = (int32_t *)b[4];
  sc.down_i32(ids_out, ids, N);
  sc.down_f32((float *)b[2], weights, N);
  sc.down_i32(hmeta, meta, 2 * E + 1);
  sc.down_i32(hrow, row_of, N);
  FGCU_CHECK(sc.status("moe_route hook", err));
  offsets[0] = 0;
  for (int e = 0; e < E; e++) offsets[e + 1] = offsets[e] + hmeta[E + 1 + e];
  for (int s = 0; s < N; s++) slots[s] = -1;
  for (int s = 0; s < N; s++) {
    const int e = ids_out[s];
    if (e < 0 || e >= E) continue;
    const int j = hrow[s] - hmeta[e];
    if (hmeta[e] % pad == 0 && j >= 0 && j < hmeta[E + 1 + e]) slots[offsets[e] + j] = s;
  }
  return 0;
}

int expert_gate(Scope &sc, const int32_t *d, Bufs b, char *err) {
  const int T = d[0], H = d[1], I = d[2];
  const bf16 *x = sc.bf(hf(b, 0), (size_t)T * H), *gate = sc.bf(hf(b, 1), H);
  bf16 *act = sc.bf(hf(b, 2), (size_t)T * I);
  FGCU_CHECK(sc.status("expert_gate hook", err));
  FGCU_CHECK(expert_gate_rows(x, gate, T, H, I, act, sc.stream, err));
  sc.down_bf((float *)b[2], act, (size_t)T * I);
  return sc.status("expert_gate hook", err);
}

}  // namespace

extern "C" int fgcu_op_host(int32_t op, const int32_t *d, const float *p, void *const *b, char *err) {
  FGCU_CHECK(need_device(err));
  Scope sc;
  FGCU_TRY(cudaStreamCreateWithFlags(&sc.stream, cudaStreamNonBlocking));
  switch (op) {
    case FG_OP_ROPE: return rope(sc, d, p, b, err);
    case FG_OP_NORM: return norm(sc, d, p, b, /*post=*/false, err);
    case FG_OP_POST_NORM: return norm(sc, d, p, b, /*post=*/true, err);
    case FG_OP_SANDWICH_NORM: return sandwich_norm(sc, d, p, b, err);
    case FG_OP_ACTIVATION: return activation_op(sc, d, b, err);
    case FG_OP_EMBED: return embed(sc, d, p, b, err);
    case FG_OP_POS_EMBED: return pos_embed(sc, d, b, err);
    case FG_OP_BIAS_ROWS: return bias_rows(sc, d, b, err);
    case FG_OP_SOFTCAP: return softcap_op(sc, d, p, b, err);
    case FG_OP_MOE_ROUTE: return moe_route_op(sc, d, p, b, err);
    case FG_OP_EXPERT_GATE: return expert_gate(sc, d, b, err);
  }
  snprintf(err, 512, "unknown op %d", op);
  return FG_ERR_INVALID_ARGUMENT;
}
