// One rank of the CUDA engine (fgcu_rank; cuda_api.h's fgcu_engine drives tp of them): weights,
// KV pool, workspaces, and the
// per-step metadata that one upload carries to the device. Shared by engine.cu (life cycle),
// step.cu (forward + sampling) and hooks.cu (test hooks).
#pragma once
#include "cuda/attention.cuh"
#include "cuda/cuda_api.h"
#include "cuda/gemm.cuh"
#include "cuda/linear.cuh"
#include "cuda/mla.cuh"
#include "cuda/moe.cuh"
#include "cuda/nccl.cuh"
#include "cuda/sampling.cuh"

namespace fgcu {

// One decoder layer on the device. Projections are Weights (weight.cuh: bf16, or FP8 E4M3 with
// scales), [out, in]; the router and shared_expert_gate bf16; vectors fp32; unused ones null.
//   qkv    [(nh + 2 nkv) * hd, H]  = q rows, then k rows, then v rows
//   mlp_in [2I, H] (gated: rows interleaved gate_0, up_0, gate_1, ...) or [I, H] (plain: up),
//          so a decode GEMV warp holds one gate/up pair and applies the activation itself
// MoE layers have no mlp_in / down; the router and per expert the same pair (host arrays of E
// Weights, laid out like the dense ones), as moe.cuh's MoeLayer takes them, and the shared
// expert (sh_in, sh_down: the dense layout at its own width; sh_gate [1, H]). A MoE model's dense
// layers (layer_dense) have mlp_in / down like a dense model's.
// MLA layers (mla.cuh): qkv holds Wa [QL + L + R, H] (q_a rows, then kv_a rows), q_mla the q_b
// [nh (dn + R), QL] or q [nh (dn + R), H] projection, o is [H, nh dv]; kv_b lives split as
// w_uk [nh, dn, L] and w_uvT [nh, L, dv] in the arena.
// A Weight gets its device memory when its first part is loaded, in that part's dtype (load.cu).
// RMSNorm weights (norms, q_norm, k_norm) hold (norm_weight_offset + w), folded in at load.
struct LayerW {
  Weight qkv, o, mlp_in, down;
  float *attn_norm, *attn_norm_b, *mlp_norm, *mlp_norm_b, *qkv_b, *o_b, *mlp_in_b, *down_b;
  float *q_norm, *k_norm;                 // qk_norm: [head_dim] each
  float *post_attn_norm, *post_mlp_norm;  // sandwich_norms: [H] each
  bf16 *router;
  Weight *ex_in, *ex_down;                // [E] each (host arrays)
  float **ex_in_b, **ex_down_b;
  Weight sh_in, sh_down;
  bf16 *sh_gate;
  Weight q_mla;
  float *q_a_norm, *kv_a_norm;            // mla: [QL] (q_lora_rank > 0), [L]
  bf16 *w_uk, *w_uvT;                     // mla
};


// Pinned host staging + its device twin for the step's metadata.
struct MetaBuf {
  char *host = nullptr, *dev = nullptr;
  size_t cap = 0;
};
void release(MetaBuf &mb);

// One step's metadata: counts on the host, arrays on the device (after upload).
struct Meta {
  // R sample rows get logits (fg_batch's rows, in order: sampled or scored, any number per
  // sequence); logit_rows[r] is row r's token in the pass.
  int T = 0, S = 0, R = 0, L = 0, splits = 1, num_wide = 0, num_narrow = 0;
  bool any_penalty = false;
  uint64_t layout = 0;           // room of the variable-length regions (graph key)
  const int *token_ids, *positions, *token_seq, *cu_seqlens, *context_lens, *block_indptr,
      *block_indices, *logit_rows, *pen_ids, *bias_ids;
  const float *bias_vals;
  const AttnTile *wide, *narrow;
  const SampleRow *rows;
  const uint32_t *masks;
  const SampleRow *rows_host;    // the rows as packed in the pinned upload (late_masks copies them)
};

// Packs the batch (validated) into mb.host, plans attention tiles and key splits (splits > 0
// forces a count), and queues the upload on `stream`. vocab sizes the masks (0: none needed).
int build_meta(MetaBuf &mb, const fg_batch *b, int group, int num_kv_heads, int num_sms,
               int splits, int vocab, cudaStream_t stream, Meta *m, char *err);

// fg_step_finish's late masks: copies m's rows with each sampled row's mask set from row_masks
// (-1 none) and the num_masks masks into lb, queues their upload on `stream` after the pass
// already queued, and points m->rows / m->masks at them. Sampling alone reads them, so the
// forward pass in flight is untouched.
int late_masks(MetaBuf &lb, const int32_t *row_masks, const uint32_t *masks, int num_masks,
               int vocab, cudaStream_t stream, Meta *m, char *err);

// How a rank waits for its stream under tensor parallelism: polling, so that a collective whose
// peer never arrives ends in an error at the deadline instead of a hang, and every rank stops
// early once another has failed (*abort set). Null: a plain cudaStreamSynchronize.
struct WaitCtl {
  int64_t deadline_ns = 0;          // CLOCK_MONOTONIC
  const volatile int *abort = nullptr;
  int timeout_ms = 0;               // for the message
};
int stream_wait(cudaStream_t st, const WaitCtl *w, char *err);
int64_t now_ns();

// A captured forward pass and the shape + addresses it was captured with.
struct GraphSlot {
  uint64_t key[10] = {};
  cudaGraphExec_t exec = nullptr;
  uint64_t last_use = 0;
};
// A mixed pass's pieces captured for one padded token count (piecewise.cu): graphs [num_layers
// + 1], null until captured; key: the padded count and the workspaces' addresses.
struct PieceSet {
  uint64_t key[8] = {};
  cudaGraphExec_t *execs = nullptr;
  int runs = 0;           // passes begun with this set: the first runs live, the second captures
  uint64_t last_use = 0;  // 0: empty
};
void release(PieceSet &ps, int64_t num_layers);
struct Profiler;
Profiler *profiler_create();  // null unless FASTGEN_PROFILE=1
void profiler_mark(Profiler *p, cudaStream_t s, const char *what);
void profiler_step_done(Profiler *p);
void profiler_dump(Profiler *p);

// Samples (or scores) the m.R rows of logits [R, V] (device), copies ids / logprobs (and raw
// logits when out->logits) back, waits, and writes them to `out` row by row. out_dev / out_host hold
// R * (8 + 8 * m.L) bytes; counts is needed when m.any_penalty.
int sample_and_return(const Meta &m, const float *logits, int V, float *z, int *counts,
                      void *out_dev, void *out_host, fg_step_output *out, cudaStream_t st,
                      const WaitCtl *wait, char *err);

}  // namespace fgcu

// One rank of the CUDA engine: the whole model when tp == 1, else this rank's slice (tp.cu drives
// the ranks). m holds the rank's counts (heads, KV heads, the dense, expert and shared expert
// widths); vocab_size stays the whole vocabulary, of which embed / lm_head hold rows
// [vocab_begin, + vocab_rows).
struct fgcu_rank {
  fgcu_model m;
  fgcu_model full;                 // the whole model, for cutting shards at load
  int rank = 0, tp = 1;
  int64_t vocab_begin = 0, vocab_rows = 0;
  int64_t q_head_begin = 0, kv_head_begin = 0, inter_begin = 0, moe_inter_begin = 0, shared_inter_begin = 0;
  fgcu::Nccl *nccl = nullptr;      // tp > 1: the rank's communicator
  fgcu::ncclComm_t comm = nullptr;
  bool skip_collectives = false;   // fault injection (FASTGEN_TP_FAULT_RANK): proves timeouts
  // Lazy kernel loading (CUDA's default) takes a process-wide driver lock and waits for the device
  // to drain; if a peer's collective is not launched yet because that peer waits on the same lock,
  // both hang. So in a step whose shape is new (kernels may load), every rank waits after each
  // collective until all ranks have launched it (rendezvous); steady-state shapes skip that.
  bool lockstep = false;
  int (*rendezvous)(void *group, char *err) = nullptr;
  void *group = nullptr;
  uint64_t seen_shapes[1024] = {};  // open-addressed set of step shapes run before
  const fgcu::WaitCtl *wait = nullptr;  // set by tp.cu for the step in flight
  fgcu::DevBuf logits_part, gathered;   // tp > 1: this rank's logits columns, all ranks' columns

  double *inv_freq_host = nullptr, *sliding_inv_freq_host = nullptr;
  uint8_t *layer_sliding_host = nullptr;  // m.layer_sliding points here
  uint8_t *layer_dense_host = nullptr;    // m.layer_dense points here (all 0 without experts)
  fgcu::MlaModel mla_model{};             // m.mla: the dims and rules mla.cuh reads
  // Whether layer l routes to experts (else its MLP is dense).
  bool moe_layer(int64_t l) const { return m.num_experts > 0 && !layer_dense_host[l]; }
  // What the KV cache holds per layer and token: K and V rows of nkv * hd, or (MLA) one
  // [latent | k_pe] row.
  int kv_planes() const { return m.mla ? 1 : 2; }
  int64_t kv_row() const { return m.mla ? m.kv_lora_rank + m.qk_rope_head_dim : m.num_kv_heads * m.head_dim; }
  // o's input width: nh * hd, or (MLA) nh * v_head_dim.
  int64_t o_dim() const { return m.num_heads * (m.mla ? m.v_head_dim : m.head_dim); }
  int device = 0, num_sms = 0;
  cudaStream_t stream = nullptr;
  fgcu::Gemm *gemm = nullptr;
  fgcu::Fp8Gemm *fp8 = nullptr;    // GEMMs over FP8 Weights (fp8_gemm.cuh)
  fgcu::Gemms gemms() const { return {gemm, fp8}; }

  // Weights: the arenas hold every tensor but the projections, laid out at create; each
  // projection (a Weight) is its own allocation, made when its first part is loaded (load.cu),
  // listed in weight_allocs. weight_bytes counts all of them.
  void *mat_arena = nullptr, *vec_arena = nullptr;
  void **weight_allocs = nullptr;
  int num_weight_allocs = 0, cap_weight_allocs = 0;
  uint64_t weight_bytes = 0;
  uint64_t bf16_model_bytes = 0, fp8_model_bytes = 0;  // the whole rank's weights in bf16 / FP8
  bool any_fp8 = false;            // an FP8 Weight was loaded (fp8_gemm's workspaces and probe)
  bool fp8_sized = false;          // rank_fp8_reserve measured the two below
  int fp8_kmax = 0;                // the widest K of an FP8 Weight (quantized activations)
  uint64_t fp8_scratch = 0;        // elements of the dequantize fallback's scratch
  fgcu::LayerW *layers = nullptr;
  fgcu::bf16 *embed = nullptr, *lm_head = nullptr;      // [vocab_rows, embed_dim]
  fgcu::bf16 *proj_in = nullptr, *proj_out = nullptr;   // embed_dim != hidden: [H, D], [D, H]
  float *pos_embed = nullptr, *final_norm = nullptr, *final_norm_b = nullptr, *lm_head_b = nullptr;
  double *inv_freq = nullptr;  // device [rotary_dim / 2]
  double *sliding_inv_freq = nullptr;  // device [rotary_dim / 2] when the model has one
  // Rows of qkv (MLA: of Wa); rows of mlp_in (gated: 2 x the width) of the dense MLP, of one
  // expert, of the shared expert; ws_width, ws_rows: the width and mlp_in rows the mlp / act
  // workspaces serve (the widest of the dense MLP, where a layer has one, and the shared expert).
  int qkv_rows = 0, mlp_rows = 0, ex_rows = 0, sh_rows = 0, ws_width = 0, ws_rows = 0;
  void *staging = nullptr;     // pinned, for loading; freed at finalize

  // [num_layers][2][num_blocks, nkv, block_size, hd], or (MLA) [num_layers][num_blocks, block_size, L + R],
  // of bf16, or (kv_fp8, --kv-cache-dtype fp8) of E4M3 bytes: e4m3(x / scale) with the layer's
  // k_scales / v_scales (MLA rows: k_scales; cuda/kv_fp8.cuh)
  void *kv = nullptr;
  bool kv_fp8 = false;
  float *k_scales = nullptr, *v_scales = nullptr;  // host [num_layers] (kv_fp8)
  size_t layer_elems = 0;      // elements of one plane of one layer: num_blocks * block_size * kv_row()
  int kv_elem_bytes() const { return kv_fp8 ? 1 : 2; }
  // Plane 0 (K; MLA: the rows) or 1 (V) of layer l, typed bf16 as the kernels' arguments take it
  // (holding E4M3 bytes when kv_fp8).
  fgcu::bf16 *kv_plane(int64_t l, int plane) const {
    return (fgcu::bf16 *)((char *)kv + (size_t)(kv_planes() * l + plane) * layer_elems * kv_elem_bytes());
  }
  int num_blocks = 0, block_size = 0;
  uint64_t kv_bytes = 0;
  uint64_t free_after_weights = 0;  // device bytes free when the KV pool was sized
  bool finalized = false;

  // activations [T, ...] and per sampled row [R, ...]; y: fp32 [T, H] sublayer output before its
  // post norm (sandwich_norms)
  fgcu::DevBuf h, x, x2, qkv, attn, mlp, act, part_o, part_lse, y;
  fgcu::DevBuf split_done;     // int [narrow tiles, KV heads], zeros between passes (attn_splits.cuh)
  fgcu::DevBuf norm_part;      // fp32 [blocks, 16]: a deferred norm's partial sums (rms_fold.cuh DeferredNorm)
  fgcu::DevBuf xf, logits, z, counts, out_dev;
  fgcu::DevBuf emb, xd;        // embed_dim != hidden: embeddings fp32 [T, D]; bf16 [max(T, R), D]
  fgcu::MoeWork moe;           // MoE layers' routing and expert workspaces
  fgcu::MlaWork mla;           // MLA layers' workspaces
  void *expert_ptrs = nullptr; // host arrays behind LayerW::ex_in_b / ex_down_b (num_layers * 2 * E pointers)
  fgcu::Weight *expert_weights = nullptr;  // behind LayerW::ex_in / ex_down (num_layers * 2 * E)
  fgcu::MetaBuf meta;
  fgcu::MetaBuf late;          // fg_step_finish's rows and masks (meta.cu late_masks)
  void *out_host = nullptr;
  size_t out_host_bytes = 0;

  // Decode steps replayed as CUDA graphs (step.cu), keyed by batch shape and buffer addresses.
  fgcu::GraphSlot graphs[16];
  uint64_t graph_clock = 0;
  bool graphs_on = true;       // FASTGEN_CUDA_GRAPHS=0 turns them off
  // Mixed passes in pieces between attentions, per padded token count (piecewise.cu;
  // FASTGEN_PIECEWISE_GRAPHS=1, and graphs on): one set a bucket, 24 buckets up to 2048 tokens.
  fgcu::PieceSet pieces[24];
  bool pieces_on = false;
  // FASTGEN_PROFILE=1: device time per op kind, printed to stderr at destroy (no graphs then).
  fgcu::Profiler *prof = nullptr;
};

// Rank life cycle (engine.cu) and step (step.cu); the core reaches them through tp.cu's
// fgcu_engine_* entry points. Each call expects the rank's device to be current.
namespace fgcu {
// full: the whole model; the rank keeps its slice (heads, KV heads, intermediate, vocab rows).
int rank_create(const fgcu_model *full, int device, int rank, int tp, fgcu_rank **out, char *err);
void rank_destroy(fgcu_rank *e);
// data: the whole tensor (numel elements); the rank copies its shard.
int rank_load(fgcu_rank *e, int32_t layer, int32_t expert, int32_t kind, int32_t dtype,
                const void *data, uint64_t numel, char *err);
// An FP8 part of a projection (tp == 1 only): q [rows, cols] E4M3, scales [rows, ceil(cols /
// kblock)] fp32 (weight.cuh), input_scale the static activation scale (0 dynamic).
int rank_load_fp8(fgcu_rank *e, int32_t layer, int32_t expert, int32_t kind, const uint8_t *q, int64_t rows,
                  int64_t cols, const float *scales, int64_t kblock, float input_scale, char *err);
// The dtype (weight.cuh WeightDtype) the projection holding this tensor kind has so far, or -1
// when the kind is not part of a projection.
int rank_weight_dtype(const fgcu_rank *e, int32_t layer, int32_t expert, int32_t kind);
// The FP8 GEMMs' probe and workspaces, sized before the KV pool takes the memory (engine.cu).
int rank_fp8_reserve(fgcu_rank *e, int tokens, char *err);
// The KV cache's element type, before rank_kv_fit: bf16 (fp8 false), or E4M3 with per-layer
// scales ([num_layers] each, copied; null: 1.0).
int rank_kv_dtype(fgcu_rank *e, bool fp8, const float *k_scales, const float *v_scales, char *err);
// Workspaces for the initial shapes, then how many KV blocks of block_size fit in
// memory_fraction of what is left.
int rank_kv_fit(fgcu_rank *e, int32_t block_size, float memory_fraction, int64_t *blocks, char *err);
int rank_kv_alloc(fgcu_rank *e, int64_t blocks, fgcu_info *info, char *err);
// Step in two halves, so that every rank can fail its own preparation (a bad batch, no memory
// for workspaces) before any rank enters a collective.
int rank_prepare(fgcu_rank *e, const fg_batch *b, Meta *m, char *err);
// Forward pass, logits (gathered from all ranks), sampling into out (rank 0; null elsewhere),
// and the wait for the stream: rank_forward queues the pass up to the logits, rank_complete
// samples and waits (fg_step_launch / fg_step_finish run them apart).
int rank_run(fgcu_rank *e, const Meta &m, fg_step_output *out, char *err);
int rank_forward(fgcu_rank *e, const Meta &m, char *err);
int rank_complete(fgcu_rank *e, const Meta &m, fg_step_output *out, char *err);
// Pieces of a step: the workspaces a step of m's shape needs (meta.cu); the forward pass up to
// the logits of m's rows, eager or through a cached CUDA graph for decode-only steps (forward.cu).
int ensure_workspaces(fgcu_rank *e, const Meta &m, char *err);
int forward(fgcu_rank *e, const Meta &m, char *err);
int forward_graphed(fgcu_rank *e, const Meta &m, char *err);
// Mixed passes through graphs in pieces (piecewise.cu): the padded token count a pass of m's shape
// runs at, 0 when it runs whole (eager or one decode graph); the pass itself.
int piece_rows(const fgcu_rank *e, const Meta &m);
int forward_piecewise(fgcu_rank *e, const Meta &m, char *err);
}  // namespace fgcu
