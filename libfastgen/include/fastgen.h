/*
 * fastgen.h — the C ABI of libfastgen. The only header TypeScript (bun:ffi) sees.
 *
 * Rules
 *  - Opaque handles; every export is prefixed fg_ and returns fg_status (or a plain value for
 *    pure queries). On failure, fg_last_error() gives a thread-local message naming the problem.
 *  - Nothing C++ crosses this boundary: plain C types, flat arrays, caller-owned buffers.
 *  - libfastgen is stateless between steps except for weights, the KV pool and penalty slots
 *    (fg_batch). The caller (TypeScript) owns all bookkeeping: which KV blocks and penalty slots
 *    belong to which sequence, what runs next.
 *
 * Life of an engine
 *   fg_engine_create(spec_json, backend)      normalized model spec (see below), CPU or CUDA
 *   fg_engine_load_tensor(name, ...) x N       canonical tensor names (see below), any order;
 *   fg_engine_load_quantized_tensor(...)       a weight stored as FP8 with its scales
 *   fg_engine_finalize(kv_config)              checks every tensor is present, sizes the KV pool
 *   fg_engine_get_info(&info)                  blocks, block size, vocab...
 *   fg_step(batch, out) x many                 one forward pass over a ragged batch, or in two
 *     = fg_step_launch(batch)                  halves: the forward starts, the caller computes
 *       + fg_step_finish(late, out)            the rows' masks meanwhile, then samples and waits
 *   fg_engine_destroy
 *
 * Model spec (JSON object; TypeScript normalizes Hugging Face config.json into it)
 *   arch              "llama" | "mistral" | "qwen2" | "opt" | "falcon" | "phi" | "mixtral" | ...
 *                     (informational; the fields below decide)
 *   vocab_size, hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads, head_dim
 *   max_position_embeddings
 *   embed_dim         width of embed/lm_head rows (default hidden_size); when it differs,
 *                     embed_proj_in/out map between it and hidden_size (OPT's project_in/out)
 *   norm              "rms" | "layer";   norm_eps
 *   norm_position     "pre" (default: x + f(norm(x))) | "post" (norm(x + f(x)), OPT-350m)
 *   final_norm        boolean (default true): final_norm runs before the LM head
 *   positions         "rope" | "learned" (pos_embed row p is added to the embedding at position p)
 *   rope_theta, partial_rotary_factor (1.0 = full)
 *   rope_scaling      null | {"type":"linear","factor"} |
 *                     {"type":"llama3","factor","low_freq_factor","high_freq_factor",
 *                      "original_max_position_embeddings"} |
 *                     {"type":"yarn","factor","original_max_position_embeddings", "beta_fast" (32),
 *                      "beta_slow" (1), "truncate" (true), "attention_factor" | "mscale" +
 *                      "mscale_all_dim" (default 0.1 ln(factor) + 1)} |
 *                     {"type":"dynamic","factor","original_max_position_embeddings"} (NTK-aware
 *                      base for factor x the original length, fixed at load, as vLLM does) |
 *                     {"type":"longrope","factors":[rotary_dim/2],"attention_factor"} (the
 *                      caller picks Phi-3's short or long list); yarn and longrope multiply cos
 *                      and sin by the attention factor (core/rope_freq.cpp has the formulas)
 *   rope_interleaved  false: dim i turns with dim i + rotary_dim/2 (rotate_half) | true: 2i with
 *                     2i + 1 (GPT-J; DeepSeek's complex form)
 *   sliding_window    0 (none) | W: a token at position i attends to positions j with i - j < W
 *   layer_types       absent (every layer sliding when sliding_window > 0) | per layer "full" |
 *                     "sliding": only sliding layers apply the window (Gemma 2/3, Qwen2)
 *   sliding_rope_theta  0 | base: sliding layers rotate with plain RoPE at this base, full layers
 *                     with rope_theta and rope_scaling (Gemma 3's rope_local_base_freq)
 *   qk_norm           per-head RMSNorm of q and k (q_norm, k_norm: [head_dim]) before RoPE (Qwen3,
 *                     Gemma 3)
 *   norm_weight_offset  0 | c: every RMSNorm multiplies by (c + weight) (Gemma: 1)
 *   sandwich_norms    post_attn_norm / post_mlp_norm normalize each sublayer's output before it
 *                     joins the residual: h += post_attn_norm(attn(attn_norm(h))) (Gemma 2/3)
 *   embed_scale       1 | s: h = embed[token] * s (Gemma: sqrt(hidden), rounded to the compute dtype)
 *   attn_scale        0 (= 1/sqrt(head_dim)) | the softmax scale (Gemma: query_pre_attn_scalar^-0.5)
 *   attn_logit_softcap, final_logit_softcap   0 | c: scores / logits become c * tanh(x / c)
 *   qkv_bias, o_bias, mlp_bias, lm_head_bias   booleans
 *   attention         "standard" (default: per-head q, k, v) | "mla" (DeepSeek-V2 multi-head latent
 *                     attention): kv_lora_rank, q_lora_rank (0 = q projected directly),
 *                     qk_nope_head_dim, qk_rope_head_dim, v_head_dim, latent_norm_eps (1e-6: eps of
 *                     q_a_norm and kv_a_norm); then num_kv_heads is 1, head_dim = nope + rope, only
 *                     the rope dims turn (rotary_dim = qk_rope_head_dim), and the softmax scale
 *                     (head_dim^-0.5 unless attn_scale) is also multiplied by yarn's
 *                     (0.1 mscale_all_dim ln(factor) + 1)^2 when rope_scaling is yarn with mscale_all_dim.
 *                     Per head h: q = [q_nope | q_pe]; latent c = kv_a_norm(kv_a x)[:kv_lora_rank],
 *                     k_pe = (kv_a x)[kv_lora_rank:] rotated; k = [W_uk[h] c | k_pe], v = W_uv[h] c,
 *                     where kv_b's rows per head are W_uk (nope rows) then W_uv (v rows)
 *   mlp               "gated_silu" | "gated_gelu" | "gated_gelu_tanh" | "gelu" | "gelu_tanh" | "relu"
 *                     gelu = exact erf form; gelu_tanh = tanh approximation (gelu_new,
 *                     gelu_pytorch_tanh); gated_*: down(act(gate(x)) * up(x))
 *   layout            "sequential" | "parallel" (attn and MLP both read attn_norm(x), x += both:
 *                     Phi, Falcon-7B) | "parallel_two_norms" (attn reads attn_norm(x), MLP reads
 *                     mlp_norm(x): Falcon's new decoder architecture)
 *   tie_word_embeddings  boolean (no lm_head tensor; the embedding is reused)
 *   num_experts       0 (dense MLP) | E: the MLP is a mixture of E experts, each of kind `mlp`
 *   num_experts_per_tok  k (1 <= k <= E): per token, softmax over the router's E logits, the k
 *                     largest (ties: lower expert id first), renormalized to sum 1 (Mixtral);
 *                     the MLP output is the weighted sum of those k experts' outputs
 *   moe_intermediate_size  each expert's width (default intermediate_size)
 *   moe_renormalize   true (default) | false: the k softmax weights are used as they are (Qwen2-MoE)
 *   shared_expert_intermediate_size  0 | S: a shared MLP of width S (kind `mlp`) runs for every
 *                     token and its output is added to the experts' sum
 *   shared_expert_gate  false | true: the shared MLP's output is multiplied by
 *                     sigmoid(shared_expert_gate . x) (Qwen2-MoE)
 *   dense_layers      [] | layer indices that keep the dense MLP (intermediate_size) in a MoE model
 *                     (DeepSeek's first_k_dense_replace)
 *   moe_num_groups, moe_topk_groups   1 | G, g: the experts form G consecutive groups; only the g
 *                     groups with the highest best probability compete for the top-k (DeepSeek's
 *                     group_limited_greedy); weights are still the softmax over all experts
 *   moe_routed_scale  1 | s: the k routing weights (after any renormalization) are multiplied by s
 *   Runtime keys (how to run the model; CUDA backend only):
 *   tensor_parallel   1 (default) .. 8: ranks on CUDA devices 0..N-1 over NCCL; heads, KV heads
 *                     (replicated when fewer than N), MLP columns and vocab rows are split
 *   collective_timeout_ms  0 (= 120 s): a step whose collectives do not finish in time fails
 *                     with FG_ERR_DEVICE and the engine refuses further steps
 *   quantization      "none" (default) | "fp8": every FP8-capable weight (below) loaded through
 *                     fg_engine_load_tensor in F32/F16/BF16 is quantized at load to E4M3 per
 *                     output channel (scale = amax(|row|) / 448, round to nearest even), exactly
 *                     as fg_quantize_fp8 does, then held as if loaded quantized. Weights loaded
 *                     through fg_engine_load_quantized_tensor are kept as given either way.
 *
 * Canonical tensor names (row-major, Linear weights as [out_features, in_features] like PyTorch;
 * fg_spec_tensors gives the list for one spec, from the library's table, core/tensor_kinds.h)
 *   embed                 [vocab, embed_dim]
 *   pos_embed             [max_position_embeddings, hidden]  (positions "learned"; row p = position p,
 *                         so OPT's offset of 2 is dropped by the loader)
 *   embed_proj_in         [hidden, embed_dim]     (only when embed_dim != hidden)
 *   embed_proj_out        [embed_dim, hidden]     (only when embed_dim != hidden)
 *   layers.{i}.attn_norm  [hidden]            (+ .attn_norm_bias for LayerNorm)
 *   layers.{i}.q          [heads*head_dim, hidden]      (+ .q_bias when qkv_bias)
 *   layers.{i}.k          [kv_heads*head_dim, hidden]   (+ .k_bias)
 *   layers.{i}.v          [kv_heads*head_dim, hidden]   (+ .v_bias)
 *   layers.{i}.o          [hidden, heads*head_dim]      (+ .o_bias when o_bias; MLA: heads*v_head_dim)
 *   MLA instead of k, v (and of q when q_lora_rank > 0):
 *   layers.{i}.q_a, .q_a_norm, .q_b   [q_lora_rank, hidden], [q_lora_rank], [heads*head_dim, q_lora_rank]
 *   layers.{i}.kv_a       [kv_lora_rank + qk_rope_head_dim, hidden]
 *   layers.{i}.kv_a_norm  [kv_lora_rank]
 *   layers.{i}.kv_b       [heads*(qk_nope_head_dim + v_head_dim), kv_lora_rank]
 *   layers.{i}.q_norm, .k_norm   [head_dim]          (qk_norm)
 *   layers.{i}.post_attn_norm, .post_mlp_norm   [hidden]   (sandwich_norms)
 *   layers.{i}.mlp_norm   [hidden]            (+ .mlp_norm_bias; absent for "parallel" layout)
 *   layers.{i}.gate       [intermediate, hidden]        (gated MLPs only; + .gate_bias when mlp_bias)
 *   layers.{i}.up         [intermediate, hidden]        (+ .up_bias when mlp_bias)
 *   layers.{i}.down       [hidden, intermediate]        (+ .down_bias when mlp_bias)
 *   MoE (num_experts > 0) instead of gate/up/down (except in dense_layers):
 *   layers.{i}.router     [num_experts, hidden]
 *   layers.{i}.experts.{e}.gate, .up, .down   as the dense ones, width moe_intermediate_size
 *   layers.{i}.shared_expert.gate, .up, .down  width shared_expert_intermediate_size (shared expert)
 *   layers.{i}.shared_expert_gate  [1, hidden]  (shared_expert_gate)
 *   final_norm            [hidden]            (+ final_norm_bias; absent when final_norm is false)
 *   lm_head               [vocab, embed_dim]  (absent when tie_word_embeddings; + lm_head_bias)
 *
 * FP8-capable weights: q, k, v, o, gate, up, down, experts.{e}.*, shared_expert.{gate,up,down}
 * (the linear weights of attention and MLPs, core/fp8.cpp fp8_capable). Any other matrix loaded
 * quantized (embed, lm_head, router, ...) is dequantized at load: embeddings, norms and the LM
 * head always stay in the backend's own dtype.
 *
 * Paged KV cache (per layer, per backend; the caller sees only block ids)
 *   k, v: [num_blocks, block_size, num_kv_heads, head_dim]  (CPU, fp32; CUDA keeps
 *   [num_blocks, num_kv_heads, block_size, head_dim] in bf16)
 *   MLA: one plane [num_blocks, block_size, kv_lora_rank + qk_rope_head_dim] holding per token
 *   the normalized latent c and the rotated k_pe, shared by every head
 *   fg_kv_config.kv_dtype FG_F8_E4M3: the cache keeps each K (V) value as E4M3 of value / scale,
 *   read back times scale (per layer k_scales / v_scales, default 1.0, vLLM's convention); with
 *   MLA each [latent | k_pe] row at the layer's k scale. E4M3 rounds to nearest, ties to even,
 *   saturating at +-448. The CPU backend, the reference, stores fp32 values rounded so
 *   (e4m3(x / s) * s); CUDA stores the E4M3 bytes (1 byte an element: twice the blocks of bf16
 *   in the same memory, num_blocks and kv_bytes say so) and its attention reads them back
 *   exactly, the scales folded into the softmax scale and the output. CUDA needs compute
 *   capability 8.9+ for it (FG_ERR_UNSUPPORTED naming the GPU).
 *   A sequence's block table lists its blocks in order; token at position p lives in
 *   block_table[p / block_size], slot p % block_size.
 */
#ifndef FASTGEN_H
#define FASTGEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FG_ABI_VERSION 10 /* 5: a sequence's later sampled rows count the drafts before them
                            as outputs for penalties (per-row penalty lists, see fg_batch);
                            6: FP8 weights kept FP8 on CUDA, test hooks fg_cuda_gemm_host and
                            fg_cuda_fp8_linear_host;
                            7: test hook fg_mla_attention (latent attention on either backend);
                            8: test hook fg_run_op (one op of the forward pass on either backend);
                            9: FP8 KV cache on CUDA, test hooks fg_paged_attention_fp8 and
                            fg_mla_attention_fp8;
                            10: fg_paged_attention takes scale, softcap and the wide-tile kernel */

typedef enum fg_status {
  FG_OK = 0,
  FG_ERR_INVALID_ARGUMENT = 1, /* bad spec, bad batch, wrong shape or dtype */
  FG_ERR_NOT_FOUND = 2,        /* missing tensor, unknown name */
  FG_ERR_UNSUPPORTED = 3,      /* a model feature or backend this build cannot run */
  FG_ERR_OUT_OF_MEMORY = 4,
  FG_ERR_DEVICE = 5,           /* CUDA / NCCL failure */
  FG_ERR_INTERNAL = 6,
} fg_status;

typedef enum fg_backend {
  FG_BACKEND_CPU = 0,
  FG_BACKEND_CUDA = 1,
} fg_backend;

typedef enum fg_dtype {
  FG_F32 = 0,
  FG_F16 = 1,
  FG_BF16 = 2,
  FG_F8_E4M3 = 3, /* OCP FP8 E4M3 (float8_e4m3fn, safetensors "F8_E4M3"): max 448, NaN 0x7f/0xff,
                     no infinities; only with scales (fg_engine_load_quantized_tensor) */
} fg_dtype;

typedef struct fg_engine fg_engine;

/* Thread-local message for the last failing call on this thread ("" if none). */
const char *fg_last_error(void);
/* Library version string, e.g. "0.1.0 (cpu, cuda)". */
const char *fg_version(void);
/* FG_ABI_VERSION of the library. Bindings refuse to run against any other (src/native/lib.ts). */
int32_t fg_abi_version(void);
/* The byte layout of the structs below as compiled, as JSON:
 *   {"fg_batch": {"size": 200, "fields": [["num_tokens", 0, "i32"], ["token_ids", 8, "ptr"], ...]},
 *    "fg_step_output": ..., "fg_kv_config": ..., "fg_engine_info": ...}
 * every field in declaration order; types "i32" | "u64" | "f32" | "ptr". Bindings pack the
 * structs by these offsets and check the field names and types they write against the list. */
const char *fg_abi_layout(void);
/* Number of CUDA devices visible (0 when built without CUDA or no device/driver). */
int32_t fg_cuda_device_count(void);
/* Threads the CPU backend uses (defaults to every core; FASTGEN_NUM_THREADS overrides). */
fg_status fg_set_num_threads(int32_t n);
/* The FASTGEN_* environment variables the library reads (once, at first use), as a JSON array of
 * {"name", "type": "int"|"flag"|"string", "default", "meaning", "value": the text set or null}. */
const char *fg_knobs(void);
/* The canonical tensors a spec needs, as JSON [[name, [dims...]], ...] in the table's order;
 * *out_json stays valid on this thread until its next call. FG_ERR_INVALID_ARGUMENT for a bad spec. */
fg_status fg_spec_tensors(const char *spec_json, const char **out_json);

fg_status fg_engine_create(const char *spec_json, int32_t backend, fg_engine **out);
fg_status fg_engine_destroy(fg_engine *engine);

/* Copies (and converts) one tensor. shape has ndim entries; data holds prod(shape) elements of
 * dtype F32, F16 or BF16. */
fg_status fg_engine_load_tensor(fg_engine *engine, const char *name, int32_t dtype,
                                const int64_t *shape, int32_t ndim, const void *data,
                                uint64_t nbytes);

/* Copies one quantized weight: {data, dtype, scales}. data: [rows, cols] of dtype (FG_F8_E4M3),
 * shape the canonical one (2-D). scales: fp32, one per block of [block_rows, block_cols] in a
 * row-major grid of ceil(rows / block_rows) x ceil(cols / block_cols) = num_scales, and
 *     w[r, c] = e4m3(data[r, c]) * scales[(r / block_rows) * ceil(cols / block_cols) + c / block_cols]
 * A block size of 0 is the whole dimension:
 *     per tensor          block (0, 0)      1 scale           (fp8 weight_scale [] or [1])
 *     per output channel  block (1, 0)      rows scales       (weight_scale [rows, 1])
 *     block-wise          block (128, 128)  [ceil(rows/128), ceil(cols/128)]
 *                                           (DeepSeek-V3 weight_scale_inv: it multiplies too)
 * input_scale: the checkpoint's static activation scale (W8A8, activation_scheme "static"), or 0
 * for dynamic per-token scales; read by CUDA's W8A8 GEMMs, unused by the CPU backend.
 * Backends: the CPU holds the weight dequantized to fp32, exactly (the reference: weight-only
 * semantics, activations are never quantized). CUDA keeps the weight FP8 on the device with its
 * scales (one per output row and K segment; block grids expanded over their rows, exactly) and
 * multiplies with FP8 kernels: decode-sized GEMMs weight-only (activations stay bf16), larger ones
 * W8A8 (activations quantized per token, or with input_scale; the q, k, v parts of one layer share
 * the largest), 128 x 128-block weights above 8 rows dequantized to bf16 per GEMM. It dequantizes
 * to bf16 at load instead with tensor_parallel > 1, when cols is not a multiple of 16 or the
 * blocks along cols are not, and for a part of a fused projection (q/k/v, gate/up) whose first
 * part came unquantized; a part loaded unquantized into a projection whose first part came FP8 is
 * quantized per channel. FP8 is refused on GPUs below compute capability 8.9 (FG_ERR_UNSUPPORTED
 * naming the GPU). A weight that is not FP8-capable (see the tensor list) is dequantized on every
 * backend. */
fg_status fg_engine_load_quantized_tensor(fg_engine *engine, const char *name, int32_t dtype,
                                          const int64_t *shape, int32_t ndim, const void *data,
                                          uint64_t nbytes, const float *scales, uint64_t num_scales,
                                          int64_t block_rows, int64_t block_cols, float input_scale);

typedef struct fg_kv_config {
  int32_t block_size;      /* tokens per KV block; 0 = backend default (CPU 16; CUDA by head_dim:
                              64 up to 32, 32 up to 64, else 16) */
  int32_t num_blocks;      /* explicit block count; 0 = size from memory_fraction */
  float memory_fraction;   /* share of free memory after weights for the KV pool (GPU; 0 = 0.9) */
  uint64_t max_kv_bytes;   /* CPU: cap on the KV pool in bytes when num_blocks = 0 */
  int32_t kv_dtype;        /* 0 = auto (the backend's: CPU fp32, CUDA bf16) | FG_F8_E4M3 */
  int32_t _reserved;
  const float *k_scales;   /* [num_layers] FG_F8_E4M3 K scales (finite, > 0); NULL = all 1.0 */
  const float *v_scales;   /* [num_layers] likewise for V */
} fg_kv_config;

/* Verifies every tensor the spec needs is loaded and allocates the KV pool. */
fg_status fg_engine_finalize(fg_engine *engine, const fg_kv_config *kv);

typedef struct fg_engine_info {
  int32_t num_blocks;
  int32_t block_size;
  int32_t vocab_size;
  int32_t max_position_embeddings;
  int32_t backend;
  int32_t num_threads;
  uint64_t weight_bytes;
  uint64_t kv_bytes;
} fg_engine_info;

fg_status fg_engine_get_info(fg_engine *engine, fg_engine_info *out);

/*
 * One forward pass over a ragged batch: any mix of prompt chunks and decode tokens.
 *
 *   tokens of the pass:  | seq0 chunk (5) | seq1 decode (1) | seq2 chunk (3) |
 *   cu_seqlens:          0                5                 6                9
 *
 * Sequence s owns tokens [cu_seqlens[s], cu_seqlens[s+1]); their positions are
 * context_lens[s] .. context_lens[s] + n - 1 (the caller passes them in positions[] too).
 * Its KV for those tokens is written into its blocks, then each token attends to every
 * earlier position of its sequence (the cache) and causally within the chunk.
 * Block table of sequence s: block_indices[block_indptr[s] .. block_indptr[s+1]), which must
 * cover context_lens[s] + n positions.
 *
 * Sample rows: the tokens of the pass whose logits are wanted, as a CSR per sequence. Sequence
 * s owns rows [row_indptr[s], row_indptr[s+1]); row r reads the logits of token row_tokens[r]
 * (an index into the pass, inside s's range, increasing within s) and predicts position
 * positions[row_tokens[r]] + 1. Each row is either
 *   sampled (row_targets NULL or row_targets[r] == -1): a token is drawn with s's sampling
 *     parameters, penalties and logit bias, then the row's mask;
 *   scored  (row_targets[r] = id >= 0): nothing is drawn; the row reports id and its logprob.
 *
 *   tokens:      | seq0 prompt chunk (5)        | seq1 decode | seq2 last chunk (3) |
 *   rows:          s  s  s  s                      x             x     <- row_tokens 0,1,2,3,5,8
 *   row_indptr:  0                              4             5                     6
 *   s = scored against the next prompt id (prompt logprobs), x = sampled (the next token).
 *   Speculative verification of k proposed tokens is k + 1 sampled rows of one sequence.
 *
 * Sampling is seeded per row: the draw depends only on (seed[s], the position the row predicts),
 * never on the rest of the batch, so the same seed gives the same tokens. temperature[s] == 0
 * means greedy. top_k[s] <= 0 means no top-k; top_p[s] >= 1 and min_p[s] <= 0 disable those
 * filters. Order: penalties, logit bias, mask, then greedy or temperature -> top-k -> top-p ->
 * min-p -> draw.
 *
 * Penalties (all optional, NULL to skip): penalty_indptr/penalty_ids give per sequence the
 * token ids generated so far (OpenAI presence/frequency) and repetition_penalty applies to
 * prompt + output ids the caller lists there too (HF semantics); penalty slots keep those lists
 * in the engine between passes, so a pass sends only the new ids. The logit bias
 * (logit_bias_indptr/ids/values) applies alike to every sampled row of the sequence; penalties
 * are per row: a sampled row after s's first sampled row counts the pass's tokens after that
 * first row's token, up to its own token, as output ids after s's list. Verifying k drafts,
 *   tokens of s:  | t | d0 | d1 | d2 |     rows at each: j = 0..3
 * row j is penalized as if d0 .. d(j-1) had been generated, as decoding them one by one would.
 *
 * Masks (optional): masks holds num_masks allowed-token bitmasks of ceil(vocab / 32) words,
 * bit (id % 32) of word (id / 32) set = id allowed (bits past vocab ignored). Sampled row r uses
 * mask row_masks[r] (-1 = none; row_masks NULL = no masks): a masked id counts as a -inf logit
 * for choosing (greedy, top-k, top-p, min-p and the draw all see only allowed ids). A row whose
 * every allowed id is -inf, or whose mask allows nothing, falls back as any row whose logits are
 * all -inf: it returns id 0. Scored rows ignore masks.
 *
 * Logprobs are those of the raw distribution: log-softmax of the model's logits before
 * penalties, bias, mask and temperature (vLLM's default), for sampled and scored rows alike.
 */
typedef struct fg_batch {
  int32_t num_tokens;
  int32_t num_seqs;
  const int32_t *token_ids;      /* [num_tokens] */
  const int32_t *positions;      /* [num_tokens] */
  const int32_t *cu_seqlens;     /* [num_seqs + 1] */
  const int32_t *context_lens;   /* [num_seqs] tokens already in the KV cache */
  const int32_t *block_indptr;   /* [num_seqs + 1] */
  const int32_t *block_indices;  /* [block_indptr[num_seqs]] */
  /* sample rows */
  int32_t num_rows;
  int32_t num_masks;
  const int32_t *row_indptr;     /* [num_seqs + 1]; NULL when num_rows == 0 */
  const int32_t *row_tokens;     /* [num_rows] token index in the pass */
  const int32_t *row_targets;    /* [num_rows] -1 = sampled, id = scored; NULL = all sampled */
  const int32_t *row_masks;      /* [num_rows] index into masks or -1; NULL = no masks */
  const uint32_t *masks;         /* [num_masks * ceil(vocab / 32)] */
  /* sampling, [num_seqs] each */
  const float *temperature;
  const float *top_p;
  const int32_t *top_k;
  const float *min_p;
  const uint64_t *seed;
  const float *presence_penalty;   /* NULL = 0 */
  const float *frequency_penalty;  /* NULL = 0 */
  const float *repetition_penalty; /* NULL = 1 */
  const int32_t *penalty_indptr;   /* [num_seqs + 1] or NULL */
  const int32_t *penalty_ids;      /* [penalty_indptr[num_seqs]] */
  /* [num_seqs] or NULL (= 0): the first penalty_prompt_lens[s] ids of s's penalty list are
   * prompt ids, which count for the repetition penalty only; the rest are output ids, which
   * count for repetition, presence and frequency (vLLM semantics). */
  const int32_t *penalty_prompt_lens;
  /* Penalty lists kept in the library (NULL: every list is whole in the CSR above). With
   * penalty_slots[s] = k >= 0, sequence s's list lives in the engine's slot k and the CSR holds
   * only what follows: at launch the slot keeps its first penalty_slot_keep[s] ids (0 empties it,
   * for a slot handed to another sequence) and appends s's CSR ids, of which the first
   * penalty_prompt_lens[s] are prompt ids (only while every kept id is one). Sampling then reads
   * the slot's whole list as if the CSR held it. Slots are the caller's to give out: 0 <= k <
   * 2^20, one sequence per slot in a batch; -1 = none (the CSR is s's whole list). */
  const int32_t *penalty_slots;      /* [num_seqs] or NULL */
  const int32_t *penalty_slot_keep;  /* [num_seqs] */
  const int32_t *logit_bias_indptr;/* [num_seqs + 1] or NULL */
  const int32_t *logit_bias_ids;
  const float *logit_bias_values;
  int32_t num_logprobs;            /* top-k logprobs per row, 0..20 */
  int32_t _reserved;
} fg_batch;

/* Caller-owned outputs, one entry per sample row (NULL = not wanted; ids is required when
 * num_rows > 0). */
typedef struct fg_step_output {
  int32_t *ids;               /* [num_rows] the sampled id, or the scored row's target */
  float *logprobs;            /* [num_rows] raw log-softmax at ids[r] */
  int32_t *top_ids;           /* [num_rows * num_logprobs] highest raw logprobs, descending
                                 (ties: lower id); -1 past the vocabulary */
  float *top_logprobs;        /* [num_rows * num_logprobs] */
  float *logits;              /* [num_rows * vocab] raw logits of each row */
} fg_step_output;

fg_status fg_step(fg_engine *engine, const fg_batch *batch, fg_step_output *out);

/*
 * Overlapped steps: fg_step is fg_step_launch + fg_step_finish, and a caller may do its own work
 * between the two while the forward pass runs (the engine computes grammar masks there):
 *
 *   host:     build N | launch N | masks of N's rows | finish N: wait, sample | apply N | build N+1
 *   backend:             forward N ..................|  sample  |
 *
 * fg_step_launch validates the batch (as fg_step does; the outputs come with finish) and starts
 * its forward pass: CUDA queues it on the stream and returns; the CPU backend runs it on a thread
 * the engine owns. FASTGEN_STEP_OVERLAP=0, and tensor_parallel > 1 on CUDA, start nothing at
 * launch: finish then runs the whole step, as fg_step. The fg_batch struct is copied; every array
 * it points at must stay valid and unchanged until fg_step_finish returns.
 *
 * fg_step_finish waits for the forward pass, samples the rows with the launched batch's
 * parameters and `late` (NULL: nothing late), writes `out` as fg_step would, and ends the pass,
 * whatever it returns: a pass is never left half done.
 *
 * Late inputs: the allowed-token masks of the sample rows (fg_batch's row_masks, masks,
 * num_masks, same meaning), which a grammar engine computes while the pass runs. late->row_masks
 * NULL = the batch's own masks; non-NULL requires a batch launched without masks (row_masks NULL,
 * num_masks 0). Outputs are bit for bit those of fg_step with the masks in the batch.
 *
 * One pass in flight per engine. Misuse is FG_ERR_INVALID_ARGUMENT and changes nothing: a launch,
 * or an fg_step, while a pass is in flight; a finish with none in flight. A launch that fails
 * leaves no pass in flight (and the engine as a failed fg_step does). fg_engine_destroy with a
 * pass in flight waits for it, frees the engine anyway, and returns FG_ERR_INVALID_ARGUMENT.
 */
typedef struct fg_step_late {
  int32_t num_masks;
  int32_t _reserved;
  const int32_t *row_masks;      /* [num_rows] index into masks or -1; NULL = the batch's own */
  const uint32_t *masks;         /* [num_masks * ceil(vocab / 32)] */
} fg_step_late;

fg_status fg_step_launch(fg_engine *engine, const fg_batch *batch);
fg_status fg_step_finish(fg_engine *engine, const fg_step_late *late, fg_step_output *out);

/* Test-only fault injection: the next `count` fg_step (or fg_step_launch) calls fail with
 * FG_ERR_INTERNAL, or with the status set by fg_debug_fail_status (FG_ERR_DEVICE plays a failed
 * GPU or rank). */
fg_status fg_debug_fail_next_steps(fg_engine *engine, int32_t count);
fg_status fg_debug_fail_status(fg_engine *engine, int32_t status);

/* Test hook: the FP8 GEMMs of the CUDA backend on device 0 over host buffers: y [M, N] = x [M, K]
 * (rounded to bf16) times w^T, w [N, K] E4M3 with scales [N, ceil(K / kblock)] (one per output row
 * and K segment: w[n, k] = e4m3(w[n, k]) * scales[n * ceil(K / kblock) + k / kblock]; kblock = K
 * per channel, else a multiple of 16), K % 16 == 0; input_scale the static activation scale of
 * the W8A8 path (0: per token). out_mode 0: y rounded to bf16; 1: fp32; 2: fp32 y += (y holds the
 * addend). path 0 takes the engine's choice for M; 1 the weight-only GEMV (M <= 8), 2 W8A8 on
 * cuBLASLt (per-channel scales), 3 the weight dequantized to bf16 + cuBLASLt bf16; *path_used
 * gives the path run (also 4: the tensor-core small-M kernel, which FASTGEN_FP8_SMALL_MAX_M routes
 * 1..16 rows to; not forced). FASTGEN_FP8_TIMING=<file>: the median of 20 more launches (ms), each
 * after an L2 flush, is appended to that file (benches). FG_ERR_UNSUPPORTED in CPU-only libraries. */
fg_status fg_cuda_fp8_linear_host(const float *x, int32_t m, int32_t k, const uint8_t *w, int32_t n,
                                  const float *scales, int32_t kblock, float input_scale, int32_t out_mode,
                                  int32_t path, float *y, int32_t *path_used);
/* Test hooks: the model's RMSNorm kernel on CUDA device 0 (cols <= 16384; FG_ERR_UNSUPPORTED in
 * CPU-only libraries) and the CPU backend's, on host buffers: out[i] = x[i] * rsqrt(mean(x^2) +
 * eps) * w[i] for each of `rows` rows of width `cols`. test/gpu holds one against the other. */
fg_status fg_cuda_rmsnorm_host(const float *x, const float *w, float *out, int32_t rows,
                               int32_t cols, float eps);
fg_status fg_cpu_rmsnorm(const float *x, const float *w, float *out, int32_t rows, int32_t cols,
                         float eps);
/* Test and bench hook: the CUDA backend's GEMM dispatch (cuda/gemm.cu: the GEMV kernels for 1-16
 * rows, cuBLASLt above) on device 0, on host buffers; x and w are rounded to bf16 first.
 * x: [m, k]; w: [n, k] like nn.Linear.weight.
 * act < 0: y [m, n] = x w^T, plus y's own values with FG_GEMM_ACCUMULATE (needs FG_GEMM_Y_F32),
 * fp32 with FG_GEMM_Y_F32, else rounded through bf16; bias unused. FG_GEMM_CUBLASLT: cuBLASLt
 * whatever m and the knobs.
 * act 0, 1, 2 (silu, gelu, gelu_tanh): the gated MLP input, w's rows interleaved (gate_i, up_i),
 * bias [n] interleaved alike or NULL; y [m, n / 2] = act(gate + bias) * (up + bias) through bf16;
 * FG_ERR_UNSUPPORTED where the GEMV kernels do not take the shape (m, k % 8, n odd, the knobs).
 * ms: NULL, or the median device time (ms) of 20 more launches, each after an L2 flush. */
#define FG_GEMM_Y_F32 1
#define FG_GEMM_ACCUMULATE 2
#define FG_GEMM_CUBLASLT 4
fg_status fg_cuda_gemm_host(const float *x, const float *w, const float *bias, float *y, int32_t m,
                            int32_t n, int32_t k, int32_t act, int32_t flags, float *ms);
/* Test hooks: one stage of fg_step on host buffers, on backend FG_BACKEND_CPU or _CUDA, so each
 * CUDA op can be checked against its CPU twin.
 * fg_paged_attention: batch gives num_tokens, positions, cu_seqlens, context_lens and block
 * tables (plus the arrays fg_step validation needs; sample rows are ignored);
 * q: [num_tokens, num_heads, head_dim];
 * k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim] holding every attended
 * position; out: [num_tokens, num_heads, head_dim]; scores scale * q.k (> 0), soft-capped by
 * softcap when > 0. The CUDA path rounds q and the cache to bf16; splits > 0 forces that many key
 * splits (0 = automatic); kernel picks the CUDA kernel of prompt-chunk tiles: 0 as the engine
 * does, 1 the mma.sync kernel, 2 the Hopper (sm_90a) kernel, 3 the same without overlap;
 * 2 and 3 fail FG_ERR_UNSUPPORTED where it cannot run the shape (the CPU ignores kernel).
 * fg_sample_logits: the sampling of fg_step on logits [num_rows, vocab], one per sample row of
 * the batch (which needs its tokens, positions, block tables and sample rows). */
fg_status fg_paged_attention(int32_t backend, const fg_batch *batch, const float *q,
                             const float *k_cache, const float *v_cache, float *out,
                             int32_t num_heads, int32_t num_kv_heads, int32_t head_dim,
                             int32_t block_size, int32_t num_blocks, int32_t window, float scale,
                             float softcap, int32_t splits, int32_t kernel);
fg_status fg_sample_logits(int32_t backend, const fg_batch *batch, const float *logits,
                           int32_t vocab, fg_step_output *out);
/* Test hook: DeepSeek's latent attention (attention "mla") as the engines run it, on host
 * buffers and the batch as fg_paged_attention takes it. q: [num_tokens, num_heads, latent + rope]
 * (absorbed queries); cache: [num_blocks, block_size, latent + rope], one row per attended
 * position, shared by every head: keys are whole rows, values their first `latent` values;
 * out: [num_tokens, num_heads, latent]. Scores are scale * q.k, soft-capped by softcap when > 0;
 * window 0 = every earlier position. The CUDA path rounds q and the cache to bf16 (its kernel
 * takes latent <= 512, even, and latent + rope a multiple of 8); splits > 0 forces that many key
 * splits (0 = automatic). */
fg_status fg_mla_attention(int32_t backend, const fg_batch *batch, const float *q, const float *cache,
                           float *out, int32_t num_heads, int32_t latent, int32_t rope,
                           int32_t block_size, int32_t num_blocks, int32_t window, float scale,
                           float softcap, int32_t splits);
/* Test hooks: fg_paged_attention and fg_mla_attention over an FP8 KV cache, as an engine with
 * kv_dtype FG_F8_E4M3 keeps it. The cache arrays hold the values to store; each backend stores
 * them as its FP8 cache does, e4m3(x / scale) (CUDA: E4M3 bytes written by the cache's own
 * encoder on the device; CPU: fp32 rounded so, the reference) and reads them back times the
 * scale: k_scale for keys, v_scale for values, kv_scale for MLA's rows (finite, > 0).
 * fg_paged_attention_fp8 also caps scores at softcap when > 0 (Gemma 2); its scale is
 * 1/sqrt(head_dim) as fg_paged_attention's. */
fg_status fg_paged_attention_fp8(int32_t backend, const fg_batch *batch, const float *q,
                                 const float *k_cache, const float *v_cache, float *out,
                                 int32_t num_heads, int32_t num_kv_heads, int32_t head_dim,
                                 int32_t block_size, int32_t num_blocks, int32_t window, int32_t splits,
                                 float softcap, float k_scale, float v_scale);
fg_status fg_mla_attention_fp8(int32_t backend, const fg_batch *batch, const float *q, const float *cache,
                               float *out, int32_t num_heads, int32_t latent, int32_t rope,
                               int32_t block_size, int32_t num_blocks, int32_t window, float scale,
                               float softcap, int32_t splits, float kv_scale);
/* Test hook: one op of the forward pass on host buffers, on FG_BACKEND_CPU or _CUDA, so test/gpu
 * holds each CUDA kernel against the CPU backend's code for it. dims (int32), params (float) and
 * bufs (pointers; NULL where marked ?) in the op's order, listed with its semantics in
 * libfastgen/src/core/op_hooks.h; arrays fp32 unless marked i32 or f64. The CUDA side rounds
 * what its kernel reads as bf16 to bf16 and hands back bf16 results as floats. */
typedef enum fg_op {
  FG_OP_ROPE = 0,          /* qkv bias + qk-norm + RoPE (full or partial) + KV-cache write */
  FG_OP_NORM = 1,          /* RMSNorm / LayerNorm of rows fused with the residual adds */
  FG_OP_POST_NORM = 2,     /* norm_position "post": h = norm(h + add) in place */
  FG_OP_SANDWICH_NORM = 3, /* h += rmsnorm(y + bias) * w_post, then the next sublayer's norm */
  FG_OP_ACTIVATION = 4,    /* MLP activations, gated (interleaved gate/up) or plain, + bias */
  FG_OP_EMBED = 5,         /* token embedding (a vocabulary shard) * scale + learned positions */
  FG_OP_POS_EMBED = 6,     /* h += learned position embedding */
  FG_OP_BIAS_ROWS = 7,     /* y += bias per row */
  FG_OP_SOFTCAP = 8,       /* x = cap * tanh(x / cap) */
  FG_OP_MOE_ROUTE = 9,     /* MoE top-k routing weights and the scatter by expert */
  FG_OP_EXPERT_GATE = 10,  /* the shared expert's gate: act *= sigmoid(x . gate) */
  FG_OP_COUNT = 11
} fg_op;
fg_status fg_run_op(int32_t backend, int32_t op, const int32_t *dims, int32_t num_dims,
                    const float *params, int32_t num_params, void *const *bufs, int32_t num_bufs);
/* The CPU backend's GEMM, exported for tests: y[m, n] = sum_k x[m, k] * w[n, k] + bias[n]
 * (x: [m, k], w: [n, k] like nn.Linear.weight, bias: [n] or NULL, y: [m, n]). */
fg_status fg_cpu_gemm(const float *x, const float *w, const float *bias, float *y, int32_t m,
                      int32_t n, int32_t k);
/* Test hooks: the weight store's FP8 arithmetic (core/fp8.cpp) on host buffers.
 * fg_dequantize: out [rows, cols] fp32 = the weight that q (dtype FG_F8_E4M3) and scales mean, with
 * the scale layout of fg_engine_load_quantized_tensor. fg_quantize_fp8: what the spec's
 * "quantization": "fp8" does to a weight w [rows, cols] (dtype F32, F16 or BF16) at load:
 * scales [rows], q [rows, cols] E4M3. */
fg_status fg_dequantize(int32_t dtype, const void *q, int64_t rows, int64_t cols, const float *scales,
                        uint64_t num_scales, int64_t block_rows, int64_t block_cols, float *out);
fg_status fg_quantize_fp8(int32_t dtype, const void *w, int64_t rows, int64_t cols, uint8_t *q,
                          float *scales);
/* The CPU backend's MoE routing, exported for tests. router_logits: [num_tokens, num_experts].
 * Per token: the top_k experts by softmax probability (ties: lower expert id first), weights
 * renormalized to sum 1 (Mixtral). expert_ids, weights: [num_tokens, top_k], best first.
 * The scatter: slot t * top_k + j routed to expert e is listed in
 * token_slots[expert_offsets[e] .. expert_offsets[e + 1]) (in token order), so each expert's
 * tokens are contiguous. expert_offsets: [num_experts + 1]; token_slots: [num_tokens * top_k]. */
fg_status fg_cpu_moe_route(const float *router_logits, int32_t num_tokens, int32_t num_experts,
                           int32_t top_k, int32_t *expert_ids, float *weights,
                           int32_t *expert_offsets, int32_t *token_slots);

#ifdef __cplusplus
}
#endif
#endif /* FASTGEN_H */
