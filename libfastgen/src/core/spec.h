// The normalized model spec (see the comment at the top of fastgen.h), parsed and validated.
#pragma once
#include <cstdint>
#include <string>

namespace fg {

enum class NormKind { Rms, Layer };
// Gelu* = exact erf GELU; *GeluTanh = the tanh approximation (gelu_new, gelu_pytorch_tanh).
enum class MlpKind { GatedSilu, GatedGelu, GatedGeluTanh, Gelu, GeluTanh, Relu };
enum class PositionKind { Rope, Learned };
enum class RopeScalingKind { None, Linear, Llama3 };

struct RopeScaling {
  RopeScalingKind kind = RopeScalingKind::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3 only
  double high_freq_factor = 4.0;  // llama3 only
  double original_max_position_embeddings = 8192;  // llama3 only
};

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
  int64_t sliding_window = 0;
  bool qkv_bias = false, o_bias = false, mlp_bias = false, lm_head_bias = false;
  MlpKind mlp = MlpKind::GatedSilu;
  bool parallel = false;  // layout "parallel*": x += attn(attn_norm(x)) + mlp(...)
  bool parallel_mlp_norm = false;  // "parallel_two_norms": the MLP reads mlp_norm(x)
  bool tie_word_embeddings = false;
  int64_t num_experts = 0;          // 0: dense MLP
  int64_t num_experts_per_tok = 0;  // top-k of the router
  // runtime keys (how to run it): ranks on CUDA devices 0..tp-1; collective wait limit (0 = default)
  int64_t tensor_parallel = 1;
  int64_t collective_timeout_ms = 0;

  bool gated() const {
    return mlp == MlpKind::GatedSilu || mlp == MlpKind::GatedGelu || mlp == MlpKind::GatedGeluTanh;
  }
  bool moe() const { return num_experts > 0; }
  bool rope() const { return positions == PositionKind::Rope; }
  bool embed_proj() const { return embed_dim != hidden_size; }
  // Does layer i have an mlp_norm tensor?
  bool has_mlp_norm() const { return !parallel || parallel_mlp_norm; }
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
};

// Parses and validates; throws fg::Error (INVALID_ARGUMENT for malformed or inconsistent specs,
// UNSUPPORTED for features this build cannot run, e.g. rope_scaling "dynamic").
ModelSpec parse_spec(const char *json_text);

}  // namespace fg
