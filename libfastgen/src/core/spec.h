// The normalized model spec (see the comment at the top of fastgen.h), parsed and validated.
#pragma once
#include <cstdint>
#include <string>

namespace fg {

enum class NormKind { Rms, Layer };
enum class MlpKind { GatedSilu, GatedGelu, Gelu, Relu };
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
  NormKind norm = NormKind::Rms;
  double norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double partial_rotary_factor = 1.0;
  int64_t rotary_dim = 0;  // int(head_dim * partial_rotary_factor), like transformers
  RopeScaling rope_scaling;
  int64_t sliding_window = 0;
  bool qkv_bias = false, o_bias = false, mlp_bias = false, lm_head_bias = false;
  MlpKind mlp = MlpKind::GatedSilu;
  bool parallel = false;  // layout "parallel": attn and MLP both read attn_norm's output
  bool tie_word_embeddings = false;

  bool gated() const { return mlp == MlpKind::GatedSilu || mlp == MlpKind::GatedGelu; }
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
};

// Parses and validates; throws fg::Error (INVALID_ARGUMENT for malformed or inconsistent specs,
// UNSUPPORTED for features this build cannot run, e.g. rope_scaling "dynamic").
ModelSpec parse_spec(const char *json_text);

}  // namespace fg
