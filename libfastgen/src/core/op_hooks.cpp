// fg_run_op's arguments checked once for every backend (the ops: op_hooks.h).
#include "core/op_hooks.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace fg {
namespace {

const OpArity kOps[FG_OP_COUNT] = {
    {"rope", 7, 2, 9},        {"norm", 5, 1, 7},       {"post_norm", 3, 1, 5},   {"sandwich_norm", 2, 1, 6},
    {"activation", 3, 0, 3},  {"embed", 5, 1, 5},      {"pos_embed", 3, 0, 3},   {"bias_rows", 2, 0, 2},
    {"softcap", 1, 1, 1},     {"moe_route", 7, 1, 5},  {"expert_gate", 3, 0, 3},
};

// The checks of one call, each failure naming the op.
struct Check {
  const char *op;
  void *const *bufs;

  void that(bool ok, const char *what) const {
    if (!ok) raise(FG_ERR_INVALID_ARGUMENT, "fg_run_op %s: %s", op, what);
  }
  // Buffer i must be there when it holds any value.
  void need(int i, int64_t n, const char *what) const {
    if (n > 0 && !bufs[i]) raise(FG_ERR_INVALID_ARGUMENT, "fg_run_op %s: %s is null", op, what);
  }
  // Buffer i (i32 [n], may be null) holds values in [0, bound).
  void indices(int i, int64_t n, int64_t bound, const char *what) const {
    const int32_t *a = (const int32_t *)bufs[i];
    for (int64_t j = 0; a && j < n; j++)
      if (a[j] < 0 || a[j] >= bound)
        raise(FG_ERR_INVALID_ARGUMENT, "fg_run_op %s: %s[%lld] = %d is outside [0, %lld)", op, what, (long long)j,
              a[j], (long long)bound);
  }
};

void check_rope(const Check &c, const int32_t *d) {
  const int32_t T = d[0], nh = d[1], nkv = d[2], hd = d[3], rot = d[4], bs = d[5], nb = d[6];
  c.that(T >= 0 && nh >= 1 && nkv >= 1 && hd >= 1 && bs >= 1 && nb >= 1, "bad sizes");
  c.that(rot >= 0 && rot <= hd && rot % 2 == 0, "rot must be even and in [0, hd]");
  c.need(0, T, "qkv"), c.need(1, T, "positions"), c.need(2, T, "blocks");
  c.need(7, 1, "k_cache"), c.need(8, 1, "v_cache");
  c.that(!c.bufs[5] == !c.bufs[6], "q_norm and k_norm come together");
  c.indices(1, T, INT32_MAX, "positions");
  c.indices(2, T, nb, "blocks");
}

void check_norm(const Check &c, const int32_t *d) {
  const int32_t R = d[0], H = d[1], src = d[2], kind = d[3], write_back = d[4];
  c.that(R >= 0 && H >= 1 && src >= 0 && kind >= 0 && kind <= 2 && (write_back == 0 || write_back == 1), "bad sizes");
  c.need(0, (int64_t)src * H, "h"), c.need(6, R, "out");
  if (kind != 2) c.need(4, 1, "w");
  c.that(kind == 1 || !c.bufs[5], "b is LayerNorm's");
  if (!c.bufs[1]) {
    c.that(R <= src, "R > src_rows without rows");
    return;
  }
  c.indices(1, R, src, "rows");
  if (!write_back) return;
  std::vector<char> seen(src, 0);
  for (int32_t r = 0; r < R; r++) {
    const int32_t row = ((const int32_t *)c.bufs[1])[r];
    c.that(!seen[row], "rows repeat a row with write_back");
    seen[row] = 1;
  }
}

void check_post_norm(const Check &c, const int32_t *d) {
  const int32_t R = d[0], H = d[1], kind = d[2];
  c.that(R >= 0 && H >= 1 && (kind == 0 || kind == 1), "bad sizes");
  c.need(0, R, "h"), c.need(2, 1, "w"), c.need(4, R, "out");
  c.that(kind == 1 || !c.bufs[3], "b is LayerNorm's");
}

void check_sandwich_norm(const Check &c, const int32_t *d) {
  const int32_t R = d[0], H = d[1];
  c.that(R >= 0 && H >= 1, "bad sizes");
  c.need(0, R, "h"), c.need(1, R, "y"), c.need(3, 1, "w_post");
  if (c.bufs[4]) c.need(5, R, "out");
}

void check_activation(const Check &c, const int32_t *d) {
  c.that(d[0] >= 0 && d[1] >= 1 && d[2] >= 0 && d[2] <= 5, "bad sizes or kind");
  c.need(0, d[0], "in"), c.need(2, d[0], "out");
}

void check_embed(const Check &c, const int32_t *d) {
  const int32_t T = d[0], H = d[1], begin = d[2], rows = d[3], P = d[4];
  c.that(T >= 0 && H >= 1 && begin >= 0 && rows >= 1 && P >= 0, "bad sizes");
  c.need(0, 1, "embed"), c.need(1, T, "token_ids"), c.need(4, T, "h");
  if (!c.bufs[3]) return;
  c.need(2, T, "positions");
  c.indices(2, T, P, "positions");
}

void check_pos_embed(const Check &c, const int32_t *d) {
  const int32_t T = d[0], H = d[1], P = d[2];
  c.that(T >= 0 && H >= 1 && P >= 1, "bad sizes");
  c.need(0, 1, "pos_embed"), c.need(1, T, "positions"), c.need(2, T, "h");
  c.indices(1, T, P, "positions");
}

void check_moe_route(const Check &c, const int32_t *d, const float *p) {
  const int32_t T = d[0], E = d[1], k = d[2], G = d[5], topk_groups = d[6];
  c.that(T >= 0 && E >= 1 && E <= 4096 && k >= 1 && k <= E, "need T >= 0 and 1 <= k <= E <= 4096");
  c.that((d[3] == 0 || d[3] == 1) && d[4] >= 1 && d[4] <= 128, "renormalize is 0 or 1, pad in [1, 128]");
  c.that(G >= 1 && E % G == 0 && topk_groups >= 1 && topk_groups <= G && k <= (int64_t)topk_groups * (E / G),
         "num_groups must divide E, topk_groups be in [1, num_groups], and the chosen groups hold k experts");
  c.that(std::isfinite(p[0]) && p[0] > 0, "scale must be finite and > 0");
  c.need(0, T, "logits"), c.need(1, T, "expert_ids"), c.need(2, T, "weights"), c.need(3, 1, "expert_offsets");
  c.need(4, T, "token_slots");
}

}  // namespace

const OpArity &op_arity(int32_t op) { return kOps[op]; }

void check_op(int32_t op, const int32_t *dims, int32_t num_dims, const float *params, int32_t num_params,
              void *const *bufs, int32_t num_bufs) {
  if (op < 0 || op >= FG_OP_COUNT) raise(FG_ERR_INVALID_ARGUMENT, "fg_run_op: unknown op %d", op);
  const OpArity &a = kOps[op];
  if (num_dims != a.dims || num_params != a.params || num_bufs != a.bufs)
    raise(FG_ERR_INVALID_ARGUMENT, "fg_run_op %s: takes %d dims, %d params and %d bufs, got %d, %d and %d", a.name,
          a.dims, a.params, a.bufs, num_dims, num_params, num_bufs);
  if ((a.dims && !dims) || (a.params && !params) || !bufs)
    raise(FG_ERR_INVALID_ARGUMENT, "fg_run_op %s: dims, params or bufs is null", a.name);
  const Check c{a.name, bufs};
  const int32_t *d = dims;
  switch (op) {
    case FG_OP_ROPE: return check_rope(c, d);
    case FG_OP_NORM: return check_norm(c, d);
    case FG_OP_POST_NORM: return check_post_norm(c, d);
    case FG_OP_SANDWICH_NORM: return check_sandwich_norm(c, d);
    case FG_OP_ACTIVATION: return check_activation(c, d);
    case FG_OP_EMBED: return check_embed(c, d);
    case FG_OP_POS_EMBED: return check_pos_embed(c, d);
    case FG_OP_BIAS_ROWS:
      c.that(d[0] >= 0 && d[1] >= 1, "bad sizes");
      c.need(0, d[0], "y"), c.need(1, 1, "bias");
      return;
    case FG_OP_SOFTCAP:
      c.that(d[0] >= 0 && std::isfinite(params[0]) && params[0] > 0, "need n >= 0 and a finite cap > 0");
      c.need(0, d[0], "x");
      return;
    case FG_OP_MOE_ROUTE: return check_moe_route(c, d, params);
    case FG_OP_EXPERT_GATE:
      c.that(d[0] >= 0 && d[1] >= 1 && d[2] >= 1, "bad sizes");
      c.need(0, d[0], "x"), c.need(1, 1, "gate"), c.need(2, d[0], "act");
      return;
  }
}

}  // namespace fg
