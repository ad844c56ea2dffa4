// The normalized model spec (see the comment at the top of fastgen.h), parsed and validated.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fg {

enum class NormKind { Rms, Layer };
// Gelu* = exact erf GELU; *GeluTanh = the tanh approximation (gelu_new, gelu_pytorch_tanh).
enum class MlpKind { GatedSilu, GatedGelu, GatedGeluTanh, Gelu, GeluTanh, Relu };
enum class PositionKind { Rope, Learned };
// Dynamic = NTK-aware base scaling in vLLM's static form (the base for factor x the original
// length, fixed at load; transformers recomputes it per forward from the sequence length).
enum class RopeScalingKind { None, Linear, Llama3, Yarn, Dynamic, LongRope };
enum class LayerType { Full, Sliding };
// Standard: per-head q, k, v (MHA, GQA, MQA). Mla: DeepSeek's multi-head latent attention, whose
// cache holds one compressed latent plus one rotated key per token, shared by every head.
enum class AttentionKind { Standard, Mla };

struct RopeScaling {
  RopeScalingKind kind = RopeScalingKind::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3 only
  double high_freq_factor = 4.0;  // llama3 only
  double original_max_position_embeddings = 8192;  // llama3, yarn, dynamic
  double beta_fast = 32, beta_slow = 1;   // yarn: the ramp's rotation counts
  bool truncate = true;                   // yarn: floor/ceil the ramp's ends (transformers)
  // yarn, longrope: cos and sin are multiplied by it (0 = the default formula, yarn only)
  double attention_factor = 0;
  double mscale = 0, mscale_all_dim = 0;  // yarn (DeepSeek): attention factor from both
  std::vector<double> factors;            // longrope: per-frequency divisors [rotary_dim / 2]
};

// transformers' yarn get_mscale: 0.1 * mscale * ln(scale) + 1, or 1 when scale <= 1.
double yarn_mscale(double scale, double mscale);

struct ModelSpec {
  std::string arch;
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0;
  int64_t num_layers = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t max_position_embeddings = 0;
  int64_t embed_dim = 0;     // embed / lm_head width; != hidden_size: embed_proj_in/out exist
  NormKind norm = NormKind::Rms;
  double norm_eps = 1e-6;
  bool post_norm = false;    // norm_position "post": x = norm(x + f(x)) (OPT-350m)
  bool final_norm = true;
  PositionKind positions = PositionKind::Rope;
  double rope_theta = 10000.0;
  double partial_rotary_factor = 1.0;
  int64_t rotary_dim = 0;  // int(head_dim * partial_rotary_factor), like transformers
  RopeScaling rope_scaling;
  // Pairs (2i, 2i + 1) rotate together (GPT-J, DeepSeek's complex form) instead of rotate_half's
  // (i, i + rotary_dim / 2).
  bool rope_interleaved = false;
  int64_t sliding_window = 0;
  // Per layer: sliding layers see the last sliding_window positions, full layers everything.
  // Always num_layers long (all Sliding when sliding_window > 0 and the spec names no types).
  std::vector<LayerType> layer_types;
  // > 0: sliding layers rotate with plain RoPE at this base (Gemma 3's rope_local_base_freq);
  // full layers keep rope_theta and rope_scaling. 0: every layer rotates alike.
  double sliding_rope_theta = 0;
  bool qkv_bias = false, o_bias = false, mlp_bias = false, lm_head_bias = false;
  MlpKind mlp = MlpKind::GatedSilu;
  bool parallel = false;  // layout "parallel*": x += attn(attn_norm(x)) + mlp(...)
  bool parallel_mlp_norm = false;  // "parallel_two_norms": the MLP reads mlp_norm(x)
  bool tie_word_embeddings = false;
  // Gemma, Qwen3: extra norms and scales (defaults leave the block as above)
  bool qk_norm = false;              // per-head RMSNorm of q and k (q_norm, k_norm) before RoPE
  double norm_weight_offset = 0;     // RMSNorm multiplies by (offset + weight): Gemma's 1
  bool sandwich_norms = false;       // post_attn_norm / post_mlp_norm on each sublayer's output
  double embed_scale = 1;            // h = embed[token] * embed_scale (Gemma: sqrt(hidden))
  double attn_scale = 0;             // softmax scale; 0 = 1 / sqrt(head_dim)
  double attn_logit_softcap = 0;     // > 0: scores become cap * tanh(scores / cap)
  double final_logit_softcap = 0;    // > 0: the same on the LM head's logits
  // MLA (attention Mla): head_dim = qk_nope_head_dim + qk_rope_head_dim (q and k heads),
  // num_kv_heads = 1 (the shared latent row), rotary_dim = qk_rope_head_dim.
  AttentionKind attention = AttentionKind::Standard;
  int64_t kv_lora_rank = 0, q_lora_rank = 0;  // q_lora_rank 0: q projected directly
  int64_t qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  double latent_norm_eps = 1e-6;    // q_a_norm and kv_a_norm (transformers' default, not norm_eps)
  int64_t num_experts = 0;          // 0: dense MLP
  int64_t num_experts_per_tok = 0;  // top-k of the router
  int64_t moe_intermediate_size = 0;  // each routed expert's width (= intermediate_size unless set)
  bool moe_renormalize = true;        // top-k weights rescaled to sum 1 (Mixtral, Qwen3-MoE)
  int64_t shared_expert_intermediate_size = 0;  // > 0: a shared expert MLP runs for every token
  bool shared_expert_gate = false;    // its output times sigmoid(shared_expert_gate . x) (Qwen2-MoE)
  // Group-limited routing (DeepSeek): experts in moe_num_groups equal groups; only the
  // moe_topk_groups groups with the highest best expert compete for the top-k.
  int64_t moe_num_groups = 1, moe_topk_groups = 1;
  double moe_routed_scale = 1;        // the k routing weights are multiplied by it
  // Per layer (num_layers long): true = a dense MLP of intermediate_size in a MoE model
  // (DeepSeek's first_k_dense_replace, Qwen-MoE's mlp_only_layers). All false without experts.
  std::vector<bool> dense_layer;
  // runtime keys (how to run it): ranks on CUDA devices 0..tp-1; collective wait limit (0 = default)
  int64_t tensor_parallel = 1;
  int64_t collective_timeout_ms = 0;
  bool quantize_fp8 = false;  // "quantization": "fp8": FP8-capable weights quantized at load

  bool gated() const {
    return mlp == MlpKind::GatedSilu || mlp == MlpKind::GatedGelu || mlp == MlpKind::GatedGeluTanh;
  }
  bool moe() const { return num_experts > 0; }
  bool moe_layer(int64_t layer) const { return moe() && !dense_layer[layer]; }
  bool mla() const { return attention == AttentionKind::Mla; }
  bool shared_expert() const { return shared_expert_intermediate_size > 0; }
  bool sliding(int64_t layer) const { return layer_types[layer] == LayerType::Sliding; }
  // The attention softmax scale (attn_scale or 1 / sqrt(head_dim); MLA times yarn's
  // mscale(factor, mscale_all_dim)^2).
  double softmax_scale() const;
  bool rope() const { return positions == PositionKind::Rope; }
  bool embed_proj() const { return embed_dim != hidden_size; }
  // Does layer i have an mlp_norm tensor?
  bool has_mlp_norm() const { return !parallel || parallel_mlp_norm; }
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  int64_t o_dim() const { return mla() ? num_heads * v_head_dim : q_dim(); }  // o's input width
  // What the KV cache holds per layer per token: K and V rows of kv_dim, or (MLA) one row of
  // the latent and the rotated key, [kv_lora_rank + qk_rope_head_dim].
  int64_t kv_cache_planes() const { return mla() ? 1 : 2; }
  int64_t kv_cache_row() const { return mla() ? kv_lora_rank + qk_rope_head_dim : kv_dim(); }
};

// Parses and validates; throws fg::Error (INVALID_ARGUMENT for malformed or inconsistent specs,
// UNSUPPORTED for features this build cannot run, e.g. rope_scaling "dynamic").
ModelSpec parse_spec(const char *json_text);

}  // namespace fg
