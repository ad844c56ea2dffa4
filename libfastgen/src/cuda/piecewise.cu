// Mixed passes (decodes plus a prompt chunk: SplitFuse's normal pass) through CUDA graphs in
// pieces (FASTGEN_PIECEWISE_GRAPHS=1; issue 24 item 3). Only decode-only passes replay whole
// graphs (forward_graphed): attention's tile metadata follows the batch's composition, so a mixed
// pass cannot be one graph. Here the token count T is rounded up to a bucket Tp (piece_rows), and
// everything between one layer's attention and the next is one piece, captured once per bucket:
//
//   eager   embed (T rows) ; zero pad rows [T, Tp) of h and attn
//   piece 0         x = attn_norm(h) ; qkv = x Wqkv^T                       (Tp rows)
//   eager   RoPE + K/V write, attention of layer 0                          (T rows, the metadata)
//   piece l         h += attn Wo^T ; x = mlp_norm(h + o_b) ; h += down(act(x Wgate_up^T))  (layer l-1)
//                   x = attn_norm(h + down_b) ; qkv = x Wqkv^T                              (layer l)
//   eager   RoPE + K/V write, attention of layer l ...
//   piece L         layer L-1's o and MLP
//   eager   final norm + LM head (R rows) ; sampling (step.cu)
//
// Pad rows start at zero, flow only through row-wise kernels (GEMMs over rows, norms, the
// activation), and are never read by RoPE (so they write no K/V), attention or the LM head: real
// rows see exactly the kernels they see eagerly, except that the GEMMs run at M = Tp, where
// cuBLASLt may pick another algorithm than at M = T (the same sums in another order; bit-identical
// when T is a bucket). A bucket's pieces run live the first time (cuBLASLt plans, kernel
// attributes and lazy kernel loading happen outside a capture), are captured the second time and
// replayed after: forward_graphed's rule.
//
// Taken: dense pre-norm decoders (no MoE, MLA, sandwich / post / parallel norms, embed_dim =
// hidden) with bf16 weights (an FP8 GEMM's activation scale could span the pad rows), one rank
// (no collectives or rendezvous inside a capture), passes of 17-2048 tokens (at 16 and below the
// GEMV kernels are chosen by M; above 2048 launches are a negligible share of the pass).
#include <stdlib.h>
#include <string.h>

#include "cuda/forward.cuh"

namespace fgcu {
namespace {

constexpr int kMinRows = 17, kMaxRows = 2048;

bool model_fits(const fgcu_rank *e) {
  const fgcu_model &M = e->m;
  return e->tp == 1 && M.num_experts == 0 && !M.mla && !M.post_norm && !M.sandwich_norms && !M.parallel &&
         M.embed_dim == M.hidden_size && !e->any_fp8;
}

// Buckets: multiples of 64 up to 1024, then of 1/8 the power of two below T (at most 12.5%
// padding; 16 + 8 buckets up to 2048).
int bucket(int T) {
  int p = 1;
  while (p * 2 <= T) p *= 2;
  const int step = p / 8 > 64 ? p / 8 : 64;
  return (T + step - 1) / step * step;
}

// Piece p (0..L): layer p-1's o projection and MLP (p > 0), then layer p's norm and qkv (p < L),
// over Tp rows.
int run_piece(fgcu_rank *e, int64_t p, int Tp, char *err) {
  const fgcu_model &M = e->m;
  const cudaStream_t st = e->stream;
  const int H = (int)M.hidden_size, I = (int)M.intermediate_size, od = (int)e->o_dim();
  const NormOp op = M.norm_layer ? kNormLayer : kNormRms;
  const float eps = M.norm_eps;
  const Gemms g = e->gemms();
  float *h = (float *)e->h.p;
  bf16 *x = (bf16 *)e->x.p, *qkv = (bf16 *)e->qkv.p, *attn = (bf16 *)e->attn.p;
  bf16 *mlp = (bf16 *)e->mlp.p, *act = (bf16 *)e->act.p;
  if (p > 0) {  // forward()'s sequence for these models (no folds: those take 16 tokens at most)
    const LayerW &w = e->layers[p - 1];
    FGCU_CHECK(linear(g, attn, w.o, h, true, true, Tp, H, od, st, err));
    FGCU_CHECK(norm_rows(h, nullptr, Tp, H, w.o_b, nullptr, true, op, w.mlp_norm, w.mlp_norm_b, eps, x, st, err));
    if (linear_gated(x, w.mlp_in, w.mlp_in_b, M.act, act, Tp, e->mlp_rows, H, st)) {
      FGCU_LAUNCHED("gemv_gated");
    } else {
      FGCU_CHECK(linear(g, x, w.mlp_in, mlp, false, false, Tp, e->mlp_rows, H, st, err));
      FGCU_CHECK(activation(mlp, w.mlp_in_b, act, Tp, I, (ActKind)M.act, st, err));
    }
    FGCU_CHECK(linear(g, act, w.down, h, true, true, Tp, H, I, st, err));
  }
  if (p < M.num_layers) {  // the down bias of the layer before is owed to h (forward()'s owed_b)
    const LayerW &w = e->layers[p];
    const float *owed = p > 0 ? e->layers[p - 1].down_b : nullptr;
    FGCU_CHECK(norm_rows(h, nullptr, Tp, H, nullptr, owed, true, op, w.attn_norm, w.attn_norm_b, eps, x, st, err));
    FGCU_CHECK(linear(g, x, w.qkv, qkv, false, false, Tp, e->qkv_rows, H, st, err));
  }
  return 0;
}

// The set for this bucket and workspaces (found, or an empty or least recently used one reset).
PieceSet *find_set(fgcu_rank *e, int Tp) {
  const uint64_t key[8] = {(uint64_t)Tp,
                           (uint64_t)(uintptr_t)e->h.p,
                           (uint64_t)(uintptr_t)e->x.p,
                           (uint64_t)(uintptr_t)e->qkv.p,
                           (uint64_t)(uintptr_t)e->attn.p,
                           (uint64_t)(uintptr_t)e->mlp.p,
                           (uint64_t)(uintptr_t)e->act.p,
                           0};
  PieceSet *victim = &e->pieces[0];
  e->graph_clock++;
  for (PieceSet &ps : e->pieces) {
    if (ps.last_use && memcmp(ps.key, key, sizeof key) == 0) {
      ps.last_use = e->graph_clock;
      return &ps;
    }
    if (ps.last_use < victim->last_use) victim = &ps;
  }
  release(*victim, e->m.num_layers);
  memcpy(victim->key, key, sizeof key);
  victim->last_use = e->graph_clock;
  return victim;
}

}  // namespace

void release(PieceSet &ps, int64_t num_layers) {
  if (ps.execs)
    for (int64_t p = 0; p <= num_layers; p++)
      if (ps.execs[p]) cudaGraphExecDestroy(ps.execs[p]);
  free(ps.execs);
  ps = PieceSet();
}

int piece_rows(const fgcu_rank *e, const Meta &m) {
  if (!e->pieces_on || !e->graphs_on || e->prof || m.T == m.S || m.T < kMinRows || m.T > kMaxRows) return 0;
  return model_fits(e) ? bucket(m.T) : 0;
}

int forward_piecewise(fgcu_rank *e, const Meta &m, char *err) {
  const fgcu_model &M = e->m;
  const cudaStream_t st = e->stream;
  const int T = m.T, Tp = piece_rows(e, m), H = (int)M.hidden_size, od = (int)e->o_dim();
  const int64_t L = M.num_layers;
  PieceSet *set = find_set(e, Tp);
  enum { kLive, kCapture, kReplay } mode = set->execs ? kReplay : (set->runs == 0 ? kLive : kCapture);
  set->runs++;
  if (mode == kCapture) {
    set->execs = (cudaGraphExec_t *)calloc(L + 1, sizeof(cudaGraphExec_t));
    if (!set->execs) {
      snprintf(err, 512, "out of host memory for %lld graphs", (long long)(L + 1));
      return FG_ERR_OUT_OF_MEMORY;
    }
  }
  FGCU_CHECK(forward_embed(e, m, err));
  if (Tp > T) {
    FGCU_TRY(cudaMemsetAsync((float *)e->h.p + (size_t)T * H, 0, (size_t)(Tp - T) * H * 4, st));
    FGCU_TRY(cudaMemsetAsync((bf16 *)e->attn.p + (size_t)T * od, 0, (size_t)(Tp - T) * od * 2, st));
  }
  AttnArgs a;
  RopeArgs ra;
  pass_args(e, m, &a, &ra);
  for (int64_t p = 0; p <= L; p++) {
    if (mode == kLive) {
      FGCU_CHECK(run_piece(e, p, Tp, err));
    } else {
      if (mode == kCapture) {
        const int rc = capture_graph(st, [&] { return run_piece(e, p, Tp, err); }, &set->execs[p], err);
        if (rc) {  // forget the bucket: a later pass starts over
          release(*set, L);
          return rc;
        }
      }
      FGCU_TRY(cudaGraphLaunch(set->execs[p], st));
    }
    if (p < L) {
      const LayerAttn la = layer_attn(e, p);
      layer_rope_args(e, p, la, ra);
      FGCU_CHECK(layer_attend(e, la, ra, a, false, err));
    }
  }
  return forward_logits(e, m, nullptr, L > 0 ? e->layers[L - 1].down_b : nullptr, err);
}

}  // namespace fgcu
