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

double req_positive(const Json &o, const char *key, const char *what) {
  const double d = as_number(require(o, key), what);
  if (!(d > 0)) raise(FG_ERR_INVALID_ARGUMENT, "spec: %s must be > 0, got %g", what, d);
  return d;
}

RopeScaling parse_rope_scaling(const Json *v, int64_t rotary_dim) {
  RopeScaling rs;
  if (!v || v->is_null()) return rs;
  if (v->type != Json::Type::Object)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: 'rope_scaling' must be null or an object");
  // transformers writes "rope_type" in newer configs, "type" in older ones.
  std::string type = v->get("type") ? opt_string(*v, "type", "") : opt_string(*v, "rope_type", "");
  if (type == "default") return rs;
  if (type == "linear" || type == "llama3" || type == "yarn" || type == "dynamic") {
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
  } else if (type == "yarn") {
    rs.kind = RopeScalingKind::Yarn;
    rs.original_max_position_embeddings = req_positive(
        *v, "original_max_position_embeddings", "rope_scaling.original_max_position_embeddings");
    rs.beta_fast = opt_number(*v, "beta_fast", 32);
    rs.beta_slow = opt_number(*v, "beta_slow", 1);
    rs.truncate = opt_bool(*v, "truncate", true);
    rs.mscale = opt_number(*v, "mscale", 0);
    rs.mscale_all_dim = opt_number(*v, "mscale_all_dim", 0);
    rs.attention_factor = opt_number(*v, "attention_factor", 0);
    if (!(rs.beta_fast > rs.beta_slow) || !(rs.beta_slow > 0) || rs.attention_factor < 0)
      raise(FG_ERR_INVALID_ARGUMENT,
            "spec: yarn rope_scaling needs beta_fast > beta_slow > 0 and attention_factor >= 0");
  } else if (type == "dynamic") {
    rs.kind = RopeScalingKind::Dynamic;
    rs.original_max_position_embeddings = req_positive(
        *v, "original_max_position_embeddings", "rope_scaling.original_max_position_embeddings");
  } else if (type == "longrope") {
    rs.kind = RopeScalingKind::LongRope;
    const Json &f = require(*v, "factors");
    if (f.type != Json::Type::Array || (int64_t)f.array.size() != rotary_dim / 2)
      raise(FG_ERR_INVALID_ARGUMENT, "spec: longrope rope_scaling.factors must be an array of rotary_dim / 2 = %lld numbers",
            (long long)(rotary_dim / 2));
    for (const Json &x : f.array) {
      const double d = as_number(x, "rope_scaling.factors[]");
      if (!(d > 0)) raise(FG_ERR_INVALID_ARGUMENT, "spec: longrope factors must be > 0, got %g", d);
      rs.factors.push_back(d);
    }
    rs.attention_factor = req_positive(*v, "attention_factor", "rope_scaling.attention_factor");
  } else if (type.empty()) {
    raise(FG_ERR_INVALID_ARGUMENT, "spec: rope_scaling has no 'type'");
  } else {
    raise(FG_ERR_UNSUPPORTED,
          "spec: rope_scaling type '%s' is not supported (supported: linear, llama3, yarn, dynamic, longrope)",
          type.c_str());
  }
  return rs;
}

std::vector<LayerType> parse_layer_types(const Json *v, int64_t num_layers, int64_t window) {
  std::vector<LayerType> types(num_layers, window > 0 ? LayerType::Sliding : LayerType::Full);
  if (!v || v->is_null()) return types;
  if (v->type != Json::Type::Array || (int64_t)v->array.size() != num_layers)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: 'layer_types' must be an array of num_layers = %lld strings",
          (long long)num_layers);
  for (int64_t i = 0; i < num_layers; i++) {
    const Json &t = v->array[i];
    if (t.type == Json::Type::String && t.string == "full") types[i] = LayerType::Full;
    else if (t.type == Json::Type::String && t.string == "sliding") types[i] = LayerType::Sliding;
    else raise(FG_ERR_INVALID_ARGUMENT, "spec: layer_types[%lld] must be \"full\" or \"sliding\"", (long long)i);
    if (types[i] == LayerType::Sliding && window <= 0)
      raise(FG_ERR_INVALID_ARGUMENT, "spec: layer_types[%lld] is \"sliding\" but sliding_window is 0", (long long)i);
  }
  return types;
}

double opt_positive(const Json &o, const char *key, double dflt) {
  const double d = opt_number(o, key, dflt);
  if (!(d > 0) || !std::isfinite(d)) raise(FG_ERR_INVALID_ARGUMENT, "spec: '%s' must be a finite number > 0, got %g", key, d);
  return d;
}

// attention "standard" (default) | "mla" with its dims (DeepSeek-V2/V3).
void parse_attention(const Json &root, ModelSpec &s) {
  const std::string kind = opt_string(root, "attention", "standard");
  if (kind == "standard") return;
  if (kind != "mla")
    raise(FG_ERR_INVALID_ARGUMENT, "spec: unknown attention '%s' (expected \"standard\" or \"mla\")", kind.c_str());
  s.attention = AttentionKind::Mla;
  s.kv_lora_rank = req_int(root, "kv_lora_rank");
  s.q_lora_rank = opt_int(root, "q_lora_rank", 0, 0);
  s.qk_nope_head_dim = req_int(root, "qk_nope_head_dim");
  s.qk_rope_head_dim = req_int(root, "qk_rope_head_dim");
  s.v_head_dim = req_int(root, "v_head_dim");
  s.latent_norm_eps = opt_positive(root, "latent_norm_eps", 1e-6);
  if (s.num_heads * (s.qk_nope_head_dim + s.qk_rope_head_dim + s.v_head_dim) > kMaxDim)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: num_heads * MLA head dims too large");
}

// Which layers of a MoE model are dense (dense_layers) and how the router picks (groups, scale).
void parse_moe_layers(const Json &root, ModelSpec &s) {
  s.dense_layer.assign(s.num_layers, false);
  const Json *dl = root.get("dense_layers");
  if (dl && !dl->is_null()) {
    if (dl->type != Json::Type::Array)
      raise(FG_ERR_INVALID_ARGUMENT, "spec: 'dense_layers' must be an array of layer indices");
    if (!s.moe() && !dl->array.empty())
      raise(FG_ERR_INVALID_ARGUMENT, "spec: dense_layers needs num_experts > 0 (without experts every layer is dense)");
    for (const Json &i : dl->array) {
      const int64_t l = as_int(i, "dense_layers[]", 0, s.num_layers - 1);
      if (s.dense_layer[l]) raise(FG_ERR_INVALID_ARGUMENT, "spec: dense_layers lists layer %lld twice", (long long)l);
      s.dense_layer[l] = true;
    }
  }
  s.moe_num_groups = opt_int(root, "moe_num_groups", 1, 1, 4096);
  s.moe_topk_groups = opt_int(root, "moe_topk_groups", s.moe_num_groups, 1, 4096);
  s.moe_routed_scale = opt_positive(root, "moe_routed_scale", 1);
  if (!s.moe() && (s.moe_num_groups != 1 || s.moe_topk_groups != 1 || s.moe_routed_scale != 1))
    raise(FG_ERR_INVALID_ARGUMENT, "spec: moe_num_groups, moe_topk_groups and moe_routed_scale need num_experts > 0");
  if (s.moe() && (s.num_experts % s.moe_num_groups != 0 || s.moe_topk_groups > s.moe_num_groups ||
                  s.num_experts_per_tok > s.moe_topk_groups * (s.num_experts / s.moe_num_groups)))
    raise(FG_ERR_INVALID_ARGUMENT,
          "spec: moe_num_groups (%lld) must divide num_experts (%lld), moe_topk_groups (%lld) must not exceed it, and "
          "the chosen groups must hold num_experts_per_tok (%lld) experts",
          (long long)s.moe_num_groups, (long long)s.num_experts, (long long)s.moe_topk_groups,
          (long long)s.num_experts_per_tok);
}

double opt_nonneg(const Json &o, const char *key, double dflt) {
  const double d = opt_number(o, key, dflt);
  if (!(d >= 0) || !std::isfinite(d)) raise(FG_ERR_INVALID_ARGUMENT, "spec: '%s' must be a finite number >= 0, got %g", key, d);
  return d;
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
  parse_attention(root, s);
  s.num_kv_heads = opt_int(root, "num_kv_heads", s.mla() ? 1 : s.num_heads, 1);
  s.head_dim = opt_int(root, "head_dim", s.mla() ? s.qk_nope_head_dim + s.qk_rope_head_dim : s.hidden_size / s.num_heads, 1);
  if (s.mla() && (s.num_kv_heads != 1 || s.head_dim != s.qk_nope_head_dim + s.qk_rope_head_dim))
    raise(FG_ERR_INVALID_ARGUMENT,
          "spec: attention \"mla\" needs num_kv_heads 1 (one latent row per token) and head_dim = "
          "qk_nope_head_dim + qk_rope_head_dim = %lld, got %lld and %lld",
          (long long)(s.qk_nope_head_dim + s.qk_rope_head_dim), (long long)s.num_kv_heads, (long long)s.head_dim);
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
  if (s.rope()) {
    if (!(s.rope_theta > 1)) raise(FG_ERR_INVALID_ARGUMENT, "spec: rope_theta must be > 1, got %g", s.rope_theta);
    if (!(s.partial_rotary_factor > 0 && s.partial_rotary_factor <= 1))
      raise(FG_ERR_INVALID_ARGUMENT, "spec: partial_rotary_factor must be in (0, 1], got %g",
            s.partial_rotary_factor);
    s.rotary_dim = (int64_t)(s.head_dim * s.partial_rotary_factor);
    if (s.mla()) {  // only the decoupled key part rotates
      if (s.partial_rotary_factor != 1)
        raise(FG_ERR_INVALID_ARGUMENT, "spec: attention \"mla\" rotates qk_rope_head_dim dims; partial_rotary_factor must be 1");
      s.rotary_dim = s.qk_rope_head_dim;
    }
    if (s.rotary_dim < 2 || s.rotary_dim % 2 != 0)
      raise(FG_ERR_INVALID_ARGUMENT,
            "spec: rotary dims int(head_dim * partial_rotary_factor) = %lld must be even and >= 2",
            (long long)s.rotary_dim);
  } else {
    s.rotary_dim = 0;  // learned positions: nothing rotates
  }
  s.rope_scaling = parse_rope_scaling(root.get("rope_scaling"), s.rotary_dim);
  s.rope_interleaved = opt_bool(root, "rope_interleaved", false);
  s.sliding_rope_theta = opt_nonneg(root, "sliding_rope_theta", 0);
  if (s.sliding_rope_theta > 0 && !(s.sliding_rope_theta > 1))
    raise(FG_ERR_INVALID_ARGUMENT, "spec: sliding_rope_theta must be 0 (none) or > 1, got %g", s.sliding_rope_theta);

  s.sliding_window = opt_int(root, "sliding_window", 0, 0, INT32_MAX);
  s.layer_types = parse_layer_types(root.get("layer_types"), s.num_layers, s.sliding_window);
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

  s.qk_norm = opt_bool(root, "qk_norm", false);
  s.norm_weight_offset = opt_nonneg(root, "norm_weight_offset", 0);
  s.sandwich_norms = opt_bool(root, "sandwich_norms", false);
  s.embed_scale = opt_number(root, "embed_scale", 1);
  if (!(s.embed_scale > 0) || !std::isfinite(s.embed_scale))
    raise(FG_ERR_INVALID_ARGUMENT, "spec: embed_scale must be a finite number > 0, got %g", s.embed_scale);
  s.attn_scale = opt_nonneg(root, "attn_scale", 0);
  s.attn_logit_softcap = opt_nonneg(root, "attn_logit_softcap", 0);
  s.final_logit_softcap = opt_nonneg(root, "final_logit_softcap", 0);
  if (s.norm == NormKind::Layer && (s.qk_norm || s.norm_weight_offset != 0 || s.sandwich_norms))
    raise(FG_ERR_UNSUPPORTED, "spec: qk_norm, norm_weight_offset and sandwich_norms need norm \"rms\"");
  if (s.sandwich_norms && (s.parallel || s.post_norm))
    raise(FG_ERR_UNSUPPORTED, "spec: sandwich_norms needs layout \"sequential\" and norm_position \"pre\"");

  s.num_experts = opt_int(root, "num_experts", 0, 0, 4096);
  s.num_experts_per_tok = opt_int(root, "num_experts_per_tok", s.num_experts ? 2 : 0, 0, 4096);
  if (s.num_experts > 0 && (s.num_experts_per_tok < 1 || s.num_experts_per_tok > s.num_experts))
    raise(FG_ERR_INVALID_ARGUMENT, "spec: num_experts_per_tok must be in [1, num_experts = %lld], got %lld",
          (long long)s.num_experts, (long long)s.num_experts_per_tok);
  if (s.num_experts == 0 && s.num_experts_per_tok != 0)
    raise(FG_ERR_INVALID_ARGUMENT, "spec: num_experts_per_tok = %lld without num_experts",
          (long long)s.num_experts_per_tok);
  s.moe_intermediate_size = opt_int(root, "moe_intermediate_size", s.intermediate_size, 1);
  s.moe_renormalize = opt_bool(root, "moe_renormalize", true);
  s.shared_expert_intermediate_size = opt_int(root, "shared_expert_intermediate_size", 0, 0);
  s.shared_expert_gate = opt_bool(root, "shared_expert_gate", false);
  if (!s.moe() && (s.shared_expert() || s.shared_expert_gate))
    raise(FG_ERR_INVALID_ARGUMENT, "spec: a shared expert needs num_experts > 0");
  if (s.shared_expert_gate && !s.shared_expert())
    raise(FG_ERR_INVALID_ARGUMENT, "spec: shared_expert_gate needs shared_expert_intermediate_size > 0");
  parse_moe_layers(root, s);
  if (s.mla() && (s.qkv_bias || s.o_bias || s.qk_norm || !s.rope()))
    raise(FG_ERR_UNSUPPORTED, "spec: attention \"mla\" has no qkv_bias, o_bias or qk_norm and needs positions \"rope\"");

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
  const std::string quantization = opt_string(root, "quantization", "none");
  if (quantization != "none" && quantization != "fp8")
    raise(FG_ERR_UNSUPPORTED, "spec: quantization \"%s\" is not supported; supported: \"none\", \"fp8\"",
          quantization.c_str());
  s.quantize_fp8 = quantization == "fp8";
  const int64_t tp = s.tensor_parallel;
  if (tp > 1) {
    if (s.num_heads % tp != 0)
      raise(FG_ERR_INVALID_ARGUMENT, "spec: tensor_parallel %lld must divide num_heads (%lld)", (long long)tp,
            (long long)s.num_heads);
    if (s.num_kv_heads % tp != 0 && tp % s.num_kv_heads != 0)
      raise(FG_ERR_INVALID_ARGUMENT,
            "spec: tensor_parallel %lld and num_kv_heads (%lld) must divide one another (fewer KV heads than "
            "ranks are replicated)", (long long)tp, (long long)s.num_kv_heads);
    const int64_t width = s.moe() ? s.moe_intermediate_size : s.intermediate_size;
    bool dense_layers = false;  // a MoE model's dense layers are intermediate_size wide
    for (int64_t l = 0; l < s.num_layers; l++) dense_layers = dense_layers || (s.moe() && s.dense_layer[l]);
    if (width % tp != 0 || s.shared_expert_intermediate_size % tp != 0 || (dense_layers && s.intermediate_size % tp != 0))
      raise(FG_ERR_INVALID_ARGUMENT,
            "spec: tensor_parallel %lld must divide the MLP width (%lld), the shared expert's (%lld) and, with "
            "dense_layers, intermediate_size (%lld)",
            (long long)tp, (long long)width, (long long)s.shared_expert_intermediate_size,
            (long long)s.intermediate_size);
  }
  return s;
}

double yarn_mscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

double ModelSpec::softmax_scale() const {
  if (attn_scale > 0) return attn_scale;
  const double scale = 1.0 / std::sqrt((double)head_dim);
  // DeepSeek's MLA scales every score (nope and rope parts alike) by yarn's mscale squared.
  const RopeScaling &rs = rope_scaling;
  if (mla() && rs.kind == RopeScalingKind::Yarn && rs.mscale_all_dim != 0) {
    const double m = yarn_mscale(rs.factor, rs.mscale_all_dim);
    return scale * m * m;
  }
  return scale;
}

}  // namespace fg
