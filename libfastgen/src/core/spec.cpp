// ModelSpec JSON -> struct. Fields the TypeScript normalizer always writes are required; a few
// have the defaults transformers uses (num_kv_heads = num_heads, head_dim = hidden / heads,
// partial_rotary_factor 1, no biases, sequential pre-norm layout, rope, embed_dim = hidden, a
// final norm, no experts) so hand-written specs stay short.
#include "core/spec.h"

#include <cmath>

#include "core/error.h"
#include "core/json.h"

namespace fg {
namespace {

const Json &require(const Json &obj, const char *key) {
  const Json *v = obj.get(key);
  if (!v) raise(FG_ERR_INVALID_ARGUMENT, "spec: missing field '%s'", key);
  return *v;
}

double as_number(const Json &v, const char *key) {
  if (v.type != Json::Type::Number)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: '%s' must be a number, got %s", key,
          Json::type_name(v.type));
  return v.number;
}

int64_t as_int(const Json &v, const char *key, int64_t min, int64_t max) {
  double d = as_number(v, key);
  if (d != std::floor(d) || d < (double)min || d > (double)max)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: '%s' must be an integer in [%lld, %lld], got %g", key,
          (long long)min, (long long)max, d);
  return (int64_t)d;
}

const int64_t kMaxDim = 1 << 30;

int64_t req_int(const Json &o, const char *key, int64_t min = 1, int64_t max = kMaxDim) {
  return as_int(require(o, key), key, min, max);
}
int64_t opt_int(const Json &o, const char *key, int64_t dflt, int64_t min = 0,
                int64_t max = kMaxDim) {
  const Json *v = o.get(key);
  return (v && !v->is_null()) ? as_int(*v, key, min, max) : dflt;
}
double opt_number(const Json &o, const char *key, double dflt) {
  const Json *v = o.get(key);
  return (v && !v->is_null()) ? as_number(*v, key) : dflt;
}
bool opt_bool(const Json &o, const char *key, bool dflt) {
  const Json *v = o.get(key);
  if (!v || v->is_null()) return dflt;
  if (v->type != Json::Type::Bool)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: '%s' must be a boolean, got %s", key,
          Json::type_name(v->type));
  return v->boolean;
}
std::string opt_string(const Json &o, const char *key, const char *dflt) {
  const Json *v = o.get(key);
  if (!v || v->is_null()) return dflt;
  if (v->type != Json::Type::String)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: '%s' must be a string, got %s", key,
          Json::type_name(v->type));
  return v->string;
}
std::string req_string(const Json &o, const char *key) {
  require(o, key);
  return opt_string(o, key, "");
}

RopeScaling parse_rope_scaling(const Json *v) {
  RopeScaling rs;
  if (!v || v->is_null()) return rs;
  if (v->type != Json::Type::Object)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: 'rope_scaling' must be null or an object");
  // transformers writes "rope_type" in newer configs, "type" in older ones.
  std::string type = v->get("type") ? opt_string(*v, "type", "") : opt_string(*v, "rope_type", "");
  if (type == "default") return rs;
  if (type == "linear" || type == "llama3") {
    rs.factor = as_number(require(*v, "factor"), "rope_scaling.factor");
    if (!(rs.factor >= 1.0))
      raise(FG_ERR_INVALID_ARGUMENT, "spec: rope_scaling.factor must be >= 1, got %g", rs.factor);
  }
  if (type == "linear") {
    rs.kind = RopeScalingKind::Linear;
  } else if (type == "llama3") {
    rs.kind = RopeScalingKind::Llama3;
    rs.low_freq_factor = as_number(require(*v, "low_freq_factor"), "rope_scaling.low_freq_factor");
    rs.high_freq_factor =
        as_number(require(*v, "high_freq_factor"), "rope_scaling.high_freq_factor");
    rs.original_max_position_embeddings =
        as_number(require(*v, "original_max_position_embeddings"),
                  "rope_scaling.original_max_position_embeddings");
    if (!(rs.low_freq_factor > 0) || !(rs.high_freq_factor > rs.low_freq_factor) ||
        !(rs.original_max_position_embeddings > 0))
      raise(FG_ERR_INVALID_ARGUMENT,
            "spec: llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor and "
            "original_max_position_embeddings > 0");
  } else if (type.empty()) {
    raise(FG_ERR_INVALID_ARGUMENT, "spec: rope_scaling has no 'type'");
  } else {
    raise(FG_ERR_UNSUPPORTED, "spec: rope_scaling type '%s' is not supported (supported: linear, llama3)",
          type.c_str());
  }
  return rs;
}

}  // namespace

ModelSpec parse_spec(const char *json_text) {
  Json root = parse_json(json_text);
  if (root.type != Json::Type::Object) raise(FG_ERR_INVALID_ARGUMENT, "spec: must be a JSON object");
  ModelSpec s;
  s.arch = opt_string(root, "arch", "");
  s.vocab_size = req_int(root, "vocab_size");
  s.hidden_size = req_int(root, "hidden_size");
  s.intermediate_size = req_int(root, "intermediate_size");
  s.num_layers = req_int(root, "num_layers", 1, 100000);
  s.num_heads = req_int(root, "num_heads");
  s.num_kv_heads = opt_int(root, "num_kv_heads", s.num_heads, 1);
  s.head_dim = opt_int(root, "head_dim", s.hidden_size / s.num_heads, 1);
  s.max_position_embeddings = req_int(root, "max_position_embeddings");

  s.embed_dim = opt_int(root, "embed_dim", s.hidden_size, 1);

  std::string norm = req_string(root, "norm");
  if (norm == "rms") s.norm = NormKind::Rms;
  else if (norm == "layer") s.norm = NormKind::Layer;
  else raise(FG_ERR_INVALID_ARGUMENT, "spec: unknown norm '%s' (expected \"rms\" or \"layer\")", norm.c_str());
  s.norm_eps = as_number(require(root, "norm_eps"), "norm_eps");
  if (!(s.norm_eps > 0)) raise(FG_ERR_INVALID_ARGUMENT, "spec: norm_eps must be > 0, got %g", s.norm_eps);
  std::string norm_position = opt_string(root, "norm_position", "pre");
  if (norm_position == "post") s.post_norm = true;
  else if (norm_position != "pre")
    raise(FG_ERR_INVALID_ARGUMENT, "spec: unknown norm_position '%s' (expected \"pre\" or \"post\")",
          norm_position.c_str());
  s.final_norm = opt_bool(root, "final_norm", true);

  std::string positions = opt_string(root, "positions", "rope");
  if (positions == "learned") s.positions = PositionKind::Learned;
  else if (positions != "rope")
    raise(FG_ERR_INVALID_ARGUMENT, "spec: unknown positions '%s' (expected \"rope\" or \"learned\")", positions.c_str());
  s.rope_theta = opt_number(root, "rope_theta", 10000.0);
  s.partial_rotary_factor = opt_number(root, "partial_rotary_factor", 1.0);
  s.rope_scaling = parse_rope_scaling(root.get("rope_scaling"));
  if (s.rope()) {
    if (!(s.rope_theta > 1)) raise(FG_ERR_INVALID_ARGUMENT, "spec: rope_theta must be > 1, got %g", s.rope_theta);
    if (!(s.partial_rotary_factor > 0 && s.partial_rotary_factor <= 1))
      raise(FG_ERR_INVALID_ARGUMENT, "spec: partial_rotary_factor must be in (0, 1], got %g",
            s.partial_rotary_factor);
    s.rotary_dim = (int64_t)(s.head_dim * s.partial_rotary_factor);
    if (s.rotary_dim < 2 || s.rotary_dim % 2 != 0)
      raise(FG_ERR_INVALID_ARGUMENT,
            "spec: rotary dims int(head_dim * partial_rotary_factor) = %lld must be even and >= 2",
            (long long)s.rotary_dim);
  } else {
    s.rotary_dim = 0;  // learned positions: nothing rotates
  }

  s.sliding_window = opt_int(root, "sliding_window", 0, 0, INT32_MAX);
  s.qkv_bias = opt_bool(root, "qkv_bias", false);
  s.o_bias = opt_bool(root, "o_bias", false);
  s.mlp_bias = opt_bool(root, "mlp_bias", false);
  s.lm_head_bias = opt_bool(root, "lm_head_bias", false);

  std::string mlp = req_string(root, "mlp");
  if (mlp == "gated_silu") s.mlp = MlpKind::GatedSilu;
  else if (mlp == "gated_gelu") s.mlp = MlpKind::GatedGelu;
  else if (mlp == "gated_gelu_tanh") s.mlp = MlpKind::GatedGeluTanh;
  else if (mlp == "gelu") s.mlp = MlpKind::Gelu;
  else if (mlp == "gelu_tanh") s.mlp = MlpKind::GeluTanh;
  else if (mlp == "relu") s.mlp = MlpKind::Relu;
  else raise(FG_ERR_INVALID_ARGUMENT,
             "spec: unknown mlp '%s' (expected gated_silu, gated_gelu, gated_gelu_tanh, gelu, "
             "gelu_tanh or relu)", mlp.c_str());

  std::string layout = opt_string(root, "layout", "sequential");
  if (layout == "parallel") s.parallel = true;
  else if (layout == "parallel_two_norms") s.parallel = s.parallel_mlp_norm = true;
  else if (layout != "sequential")
    raise(FG_ERR_INVALID_ARGUMENT,
          "spec: unknown layout '%s' (expected \"sequential\", \"parallel\" or \"parallel_two_norms\")",
          layout.c_str());
  if (s.post_norm && s.parallel)
    raise(FG_ERR_UNSUPPORTED, "spec: norm_position \"post\" needs layout \"sequential\"");
  s.tie_word_embeddings = opt_bool(root, "tie_word_embeddings", false);

  s.num_experts = opt_int(root, "num_experts", 0, 0, 4096);
  s.num_experts_per_tok = opt_int(root, "num_experts_per_tok", s.num_experts ? 2 : 0, 0, 4096);
  if (s.num_experts > 0 && (s.num_experts_per_tok < 1 || s.num_experts_per_tok > s.num_experts))
    raise(FG_ERR_INVALID_ARGUMENT, "spec: num_experts_per_tok must be in [1, num_experts = %lld], got %lld",
          (long long)s.num_experts, (long long)s.num_experts_per_tok);
  if (s.num_experts == 0 && s.num_experts_per_tok != 0)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: num_experts_per_tok = %lld without num_experts",
          (long long)s.num_experts_per_tok);

  if (s.num_heads % s.num_kv_heads != 0)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: num_heads (%lld) must be a multiple of num_kv_heads (%lld)",
          (long long)s.num_heads, (long long)s.num_kv_heads);
  if (s.num_heads * s.head_dim > kMaxDim)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: num_heads * head_dim too large");
  if (s.max_position_embeddings > INT32_MAX)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: max_position_embeddings too large");

  // Runtime keys: how the engine runs the model, not what the model is.
  s.tensor_parallel = opt_int(root, "tensor_parallel", 1, 1, 8);
  s.collective_timeout_ms = opt_int(root, "collective_timeout_ms", 0, 0, INT32_MAX);
  const int64_t tp = s.tensor_parallel;
  if (tp > 1) {
    if (s.num_heads % tp != 0)
      raise(FG_ERR_INVALID_ARGUMENT, "spec: tensor_parallel %lld must divide num_heads (%lld)", (long long)tp,
            (long long)s.num_heads);
    if (s.num_kv_heads % tp != 0 && tp % s.num_kv_heads != 0)
      raise(FG_ERR_INVALID_ARGUMENT,
            "spec: tensor_parallel %lld and num_kv_heads (%lld) must divide one another (fewer KV heads than "
            "ranks are replicated)", (long long)tp, (long long)s.num_kv_heads);
    if (s.intermediate_size % tp != 0)
      raise(FG_ERR_INVALID_ARGUMENT, "spec: tensor_parallel %lld must divide intermediate_size (%lld)",
            (long long)tp, (long long)s.intermediate_size);
  }
  return s;
}

}  // namespace fg
