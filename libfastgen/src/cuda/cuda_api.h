// Entry points of the CUDA backend as seen from the C++ core. Implemented by the .cu files
// (nvcc, libstdc++) or by no_cuda.cpp; plain C types only, since the two sides link different
// C++ standard libraries. Functions returning int give 0 or an fg_status value, with a message
// written to `err` (512 bytes).
#pragma once
#include <stdint.h>

#include "core/tensor_kinds.h"
#include "fastgen.h"

extern "C" {
int32_t fgcu_device_count(void);
// Name (256 bytes) and compute capability of CUDA device dev (cuda/device.cu), for the core's
// checks that name the GPU in their messages (FP8 needs 8.9+).
int fgcu_device_props(int32_t dev, char *name, int32_t *major, int32_t *minor, char *err);
// Test hook: the model's RMSNorm kernel (norm.cu) over host buffers on device 0.
// x, out: [rows, cols]; w: [cols]; cols <= 16384.
int fgcu_rmsnorm_host(const float *x, const float *w, float *out, int32_t rows, int32_t cols,
                      float eps, char *err);

// Test hook: the GEMM dispatch (gemm.cu) over host buffers on device 0 (fastgen.h fg_cuda_gemm_host).
int fgcu_gemm_host(const float *x, const float *w, const float *bias, float *y, int32_t m, int32_t n,
                   int32_t k, int32_t act, int32_t flags, float *ms, char *err);

// The model as the device backend needs it (the core parsed and validated the spec).
typedef struct fgcu_model {
  int64_t vocab_size, hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads,
      head_dim, max_position_embeddings;
  int32_t norm_layer;      // 0: RMSNorm, 1: LayerNorm
  int32_t final_norm;      // 1: final_norm before the LM head
  float norm_eps;
  int32_t learned_positions;
  int32_t rotary_dim;      // 0 with learned positions
  const double *inv_freq;  // [rotary_dim / 2], after scaling (copied)
  int32_t sliding_window;
  int32_t qkv_bias, o_bias, mlp_bias, lm_head_bias;
  int32_t act;             // fgcu::ActKind: gated silu/gelu/gelu_tanh, gelu, gelu_tanh, relu
  int32_t parallel;        // x += attn(n1(x)) + mlp(n1(x) or n2(x))
  int32_t parallel_mlp_norm;
  int32_t tie_word_embeddings;
  int32_t num_experts;     // 0: dense MLP; else MoE (router + experts, each of kind act)
  int32_t experts_per_tok;
  int64_t embed_dim;       // embed / lm_head width; != hidden_size: embed_proj_in / _out exist
  int32_t post_norm;       // norm_position "post": h = norm(h + f(h)) (sequential layout only)
  // Second-wave fields (spec.h; Qwen3, Gemma 2/3, Qwen2/3-MoE, Phi-3):
  const uint8_t *layer_sliding;  // [num_layers] 1: the layer applies sliding_window (copied)
  const double *sliding_inv_freq;  // null, or [rotary_dim / 2]: sliding layers' table (copied)
  float rope_attention_factor;   // cos and sin times it, except on layers with sliding_inv_freq
  int32_t qk_norm;               // per-head RMSNorm of q and k (q_norm, k_norm) before RoPE
  float norm_weight_offset;      // RMSNorm weights are (offset + w), folded in at load
  int32_t sandwich_norms;        // h += post_attn_norm(attn), h += post_mlp_norm(mlp)
  float embed_scale;             // token embeddings times it, rounded to bf16 first (1: none)
  float attn_scale;              // the softmax scale (spec.softmax_scale())
  float attn_logit_softcap;      // > 0: scores = cap * tanh(scores * scale / cap)
  float final_logit_softcap;     // > 0: logits = cap * tanh(logits / cap)
  int64_t moe_intermediate_size; // each routed expert's width
  int32_t moe_renormalize;       // top-k weights rescaled to sum 1 (else softmax over all E)
  int32_t shared_expert_gate;    // the shared expert's output times sigmoid(x . shared_expert_gate)
  int64_t shared_expert_intermediate_size;  // 0: no shared expert
  // DeepSeek-V2 (spec.h): RoPE pairs, latent attention, dense layers in MoE models, routing groups.
  int32_t rope_interleaved;      // pairs (2i, 2i + 1) rotate together instead of (i, i + rot / 2)
  int32_t mla;                   // multi-head latent attention (cuda/mla.cuh); num_kv_heads 1
  int64_t kv_lora_rank, q_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim;  // mla
  float latent_norm_eps;         // mla: q_a_norm and kv_a_norm
  const uint8_t *layer_dense;    // null, or [num_layers] 1: a dense MLP in a MoE model (copied)
  int32_t moe_num_groups, moe_topk_groups;  // group-limited top-k (<= 1: plain top-k)
  float moe_routed_scale;        // the k routing weights times it (0: unset, 1)
} fgcu_model;

typedef struct fgcu_engine fgcu_engine;

typedef struct fgcu_info {
  int32_t num_blocks, block_size;
  uint64_t weight_bytes, kv_bytes;  // summed over the ranks
} fgcu_info;

// The CUDA engine: tensor_parallel ranks on devices 0..tp-1, one NCCL communicator each and
// (tp > 1) one thread each (cuda/tp.cu). The core sees one engine whatever tp is.
// Allocates every rank's weights (bf16 matrices, fp32 vectors): FG_ERR_OUT_OF_MEMORY when they do
// not fit, FG_ERR_DEVICE without enough devices, FG_ERR_UNSUPPORTED without cuBLASLt (or NCCL
// when tp > 1). collective_timeout_ms: how long a step may wait on a collective before the
// engine is declared failed (0: FASTGEN_TP_TIMEOUT_MS when set, else 120 s).
int fgcu_engine_create(const fgcu_model *m, int32_t tensor_parallel, int32_t collective_timeout_ms,
                      fgcu_engine **out, char *err);
void fgcu_engine_destroy(fgcu_engine *g);
// Copies one whole tensor (numel elements of dtype; the core checked name and shape); each rank
// keeps its shard.
// kind: an fg_tensor_kind (core/tensor_kinds.h); layer and expert: its indices, -1 when the kind
// has none.
int fgcu_engine_load(fgcu_engine *g, int32_t layer, int32_t expert, int32_t kind, int32_t dtype,
                    const void *data, uint64_t numel, char *err);
// An FP8 part of a projection, kept FP8 on the device (tensor_parallel 1 only, else
// FG_ERR_UNSUPPORTED): q [rows, cols] E4M3 (cols % 16 == 0), scales [rows, ceil(cols / kblock)]
// fp32, one per output row and K segment of kblock columns (kblock = cols: per channel; else a
// multiple of 16), w = e4m3(q) * scale; input_scale the static activation scale (0: dynamic).
// The projection a part belongs to (q, k, v: qkv; gate, up: the MLP input; ...) takes the dtype
// of its first part loaded (here, or bf16 through fgcu_engine_load); load every later part in it.
int fgcu_engine_load_fp8(fgcu_engine *g, int32_t layer, int32_t expert, int32_t kind, const uint8_t *q,
                         int64_t rows, int64_t cols, const float *scales, int64_t kblock, float input_scale,
                         char *err);
// The dtype of the projection that tensor kind `kind` is part of: 0 nothing loaded yet, 1 bf16,
// 2 FP8 (cuda/weight.cuh WeightDtype); -1 when the kind is not part of a projection.
int32_t fgcu_engine_weight_dtype(fgcu_engine *g, int32_t layer, int32_t expert, int32_t kind);
// Allocates workspaces, then the KV pool on every rank: num_blocks, or the most blocks that
// memory_fraction (0 = 0.9) of every rank's free memory holds. block_size 0 picks one from head_dim.
// kv_dtype 0: bf16; FG_F8_E4M3: E4M3 bytes (half the memory a block) with per-layer k_scales /
// v_scales ([num_layers], null: 1.0; the core checked them: finite, > 0).
int fgcu_engine_finalize(fgcu_engine *g, int32_t block_size, int32_t num_blocks,
                        float memory_fraction, int32_t kv_dtype, const float *k_scales,
                        const float *v_scales, fgcu_info *info, char *err);
// One forward pass + sampling; the core validated the batch.
int fgcu_engine_step(fgcu_engine *g, const fg_batch *b, fg_step_output *out, char *err);
// The same in two halves (tensor_parallel 1 only; the core runs tp > 1 steps whole): launch
// uploads the batch and queues its forward pass; finish puts the late masks (row_masks null:
// none) in the rows, samples into out (null: only wait) and waits for the stream.
int fgcu_engine_launch(fgcu_engine *g, const fg_batch *b, char *err);
int fgcu_engine_finish(fgcu_engine *g, const int32_t *row_masks, const uint32_t *masks,
                       int32_t num_masks, fg_step_output *out, char *err);

// Test hooks (fastgen.h: fg_paged_attention(_fp8), fg_sample_logits, fg_mla_attention(_fp8)): one
// stage on host buffers. kv_fp8: the cache is stored as E4M3 of value / scale (kv_fp8.cuh).
// fastgen.h fg_cuda_fp8_linear_host: the FP8 GEMMs on device 0 over host buffers.
int fgcu_fp8_linear_host(const float *x, int32_t M, int32_t K, const uint8_t *w, int32_t N, const float *scales,
                         int32_t kblock, float input_scale, int32_t out_mode, int32_t path, float *y,
                         int32_t *path_used, char *err);
int fgcu_attention_host(const fg_batch *b, const float *q, const float *k_cache,
                        const float *v_cache, float *out, int32_t num_heads, int32_t num_kv_heads,
                        int32_t head_dim, int32_t block_size, int32_t num_blocks, int32_t window,
                        float scale, float softcap, int32_t splits, int32_t kernel, int32_t kv_fp8,
                        float k_scale, float v_scale, char *err);
int fgcu_sample_host(const fg_batch *b, const float *logits, int32_t vocab, fg_step_output *out,
                     char *err);
// fastgen.h fg_mla_attention on device 0.
int fgcu_mla_attention_host(const fg_batch *b, const float *q, const float *cache, float *out, int32_t num_heads,
                            int32_t latent, int32_t rope, int32_t block_size, int32_t num_blocks, int32_t window,
                            float scale, float softcap, int32_t splits, int32_t kv_fp8, float kv_scale,
                            char *err);
// fastgen.h fg_run_op: one op of core/op_hooks.h on device 0 over host buffers (the core
// checked the arguments).
int fgcu_op_host(int32_t op, const int32_t *dims, const float *params, void *const *bufs, char *err);
}
