#include "core/weights.h"

#include <cstring>

#include "core/error.h"

namespace fg {
namespace {

std::string shape_str(const int64_t *shape, size_t ndim) {
  std::string s = "[";
  for (size_t i = 0; i < ndim; i++) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

float bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {  // inf / nan
    bits = sign | 0x7F800000 | (mant << 13);
  } else if (exp != 0) {  // normal
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {  // zero
    bits = sign;
  } else {  // subnormal: renormalize
    int e = -1;
    do {
      e++;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

WeightStore::WeightStore(const ModelSpec &s, bool keep_data) : spec_(s), keep_data_(keep_data) {
  const int64_t H = s.hidden_size, I = s.intermediate_size, V = s.vocab_size, D = s.embed_dim;
  bool layer_norm = s.norm == NormKind::Layer;
  auto need = [&](const std::string &name, std::vector<int64_t> shape) {
    tensors_[name].shape = std::move(shape);
  };
  auto need_norm = [&](const std::string &name) {
    need(name, {H});
    if (layer_norm) need(name + "_bias", {H});
  };
  auto need_mlp = [&](const std::string &p) {  // p: "layers.{i}." or "layers.{i}.experts.{e}."
    if (s.gated()) {
      need(p + "gate", {I, H});
      if (s.mlp_bias) need(p + "gate_bias", {I});
    }
    need(p + "up", {I, H});
    need(p + "down", {H, I});
    if (s.mlp_bias) {
      need(p + "up_bias", {I});
      need(p + "down_bias", {H});
    }
  };
  need("embed", {V, D});
  if (!s.rope()) need("pos_embed", {s.max_position_embeddings, H});
  if (s.embed_proj()) {
    need("embed_proj_in", {H, D});
    need("embed_proj_out", {D, H});
  }
  for (int64_t i = 0; i < s.num_layers; i++) {
    std::string p = "layers." + std::to_string(i) + ".";
    need_norm(p + "attn_norm");
    need(p + "q", {s.q_dim(), H});
    need(p + "k", {s.kv_dim(), H});
    need(p + "v", {s.kv_dim(), H});
    if (s.qkv_bias) {
      need(p + "q_bias", {s.q_dim()});
      need(p + "k_bias", {s.kv_dim()});
      need(p + "v_bias", {s.kv_dim()});
    }
    need(p + "o", {H, s.q_dim()});
    if (s.o_bias) need(p + "o_bias", {H});
    if (s.has_mlp_norm()) need_norm(p + "mlp_norm");
    if (s.moe()) {
      need(p + "router", {s.num_experts, H});
      for (int64_t e = 0; e < s.num_experts; e++) need_mlp(p + "experts." + std::to_string(e) + ".");
    } else {
      need_mlp(p);
    }
  }
  if (s.final_norm) need_norm("final_norm");
  if (!s.tie_word_embeddings) need("lm_head", {V, D});
  if (s.lm_head_bias) need("lm_head_bias", {V});
}

void WeightStore::load(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                       const void *data, uint64_t nbytes) {
  if (!name) raise(FG_ERR_INVALID_ARGUMENT, "load_tensor: null name");
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    if (std::string(name) == "lm_head" && spec_.tie_word_embeddings)
      raise(FG_ERR_NOT_FOUND, "load_tensor: 'lm_head' is not used: the spec ties word embeddings");
    raise(FG_ERR_NOT_FOUND, "load_tensor: unknown tensor '%s' (not a canonical name this spec needs)",
          name);
  }
  Tensor &t = it->second;
  if (ndim < 0 || ndim > 8 || (ndim > 0 && !shape))
    raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': bad ndim %d", name, ndim);
  if ((size_t)ndim != t.shape.size() || memcmp(shape, t.shape.data(), ndim * sizeof(int64_t)) != 0)
    raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': expected shape %s, got %s", name,
          shape_str(t.shape.data(), t.shape.size()).c_str(), shape_str(shape, ndim).c_str());
  size_t elem;
  switch (dtype) {
    case FG_F32: elem = 4; break;
    case FG_F16: case FG_BF16: elem = 2; break;
    default: raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': unknown dtype %d", name, dtype);
  }
  uint64_t n = 1;
  for (int64_t d : t.shape) n *= (uint64_t)d;
  if (nbytes != n * elem)
    raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': %llu bytes for %s of %zu-byte elements (want %llu)",
          name, (unsigned long long)nbytes, shape_str(shape, ndim).c_str(), elem,
          (unsigned long long)(n * elem));
  if (!data) raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': null data", name);
  t.loaded = true;
  if (!keep_data_) return;

  std::unique_ptr<float[]> buf(new float[n]);
  if (dtype == FG_F32) {
    memcpy(buf.get(), data, n * 4);
  } else {
    const uint16_t *h = (const uint16_t *)data;
    if (dtype == FG_F16)
      for (uint64_t i = 0; i < n; i++) buf[i] = f16_to_f32(h[i]);
    else
      for (uint64_t i = 0; i < n; i++) buf[i] = bf16_to_f32(h[i]);
  }
  t.data = std::move(buf);
}

void WeightStore::check_complete() const {
  std::string missing;
  int count = 0;
  for (const auto &kv : tensors_) {
    if (kv.second.loaded) continue;
    if (count < 8) missing += (count ? ", " : "") + kv.first;
    count++;
  }
  if (count)
    raise(FG_ERR_NOT_FOUND, "finalize: %d tensor%s not loaded: %s%s", count, count > 1 ? "s" : "",
          missing.c_str(), count > 8 ? ", ..." : "");
}

const float *WeightStore::get(const std::string &name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second.data.get();
}

ModelWeights WeightStore::view() const {
  ModelWeights w;
  w.embed = get("embed");
  w.pos_embed = get("pos_embed");
  w.embed_proj_in = get("embed_proj_in");
  w.embed_proj_out = get("embed_proj_out");
  auto mlp_at = [&](const std::string &p) {
    return MlpWeights{get(p + "gate"), get(p + "gate_bias"), get(p + "up"),
                      get(p + "up_bias"), get(p + "down"), get(p + "down_bias")};
  };
  for (int64_t i = 0; i < spec_.num_layers; i++) {
    std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights l;
    l.attn_norm = get(p + "attn_norm");
    l.attn_norm_bias = get(p + "attn_norm_bias");
    l.q = get(p + "q"), l.q_bias = get(p + "q_bias");
    l.k = get(p + "k"), l.k_bias = get(p + "k_bias");
    l.v = get(p + "v"), l.v_bias = get(p + "v_bias");
    l.o = get(p + "o"), l.o_bias = get(p + "o_bias");
    l.mlp_norm = get(p + "mlp_norm"), l.mlp_norm_bias = get(p + "mlp_norm_bias");
    const MlpWeights m = mlp_at(p);
    l.gate = m.gate, l.gate_bias = m.gate_bias;
    l.up = m.up, l.up_bias = m.up_bias;
    l.down = m.down, l.down_bias = m.down_bias;
    l.router = get(p + "router");
    for (int64_t e = 0; e < spec_.num_experts; e++)
      l.experts.push_back(mlp_at(p + "experts." + std::to_string(e) + "."));
    w.layers.push_back(l);
  }
  w.final_norm = get("final_norm");
  w.final_norm_bias = get("final_norm_bias");
  w.lm_head = spec_.tie_word_embeddings ? w.embed : get("lm_head");
  w.lm_head_bias = get("lm_head_bias");
  return w;
}

uint64_t WeightStore::bytes() const {
  uint64_t total = 0;
  for (const auto &kv : tensors_) {
    if (!kv.second.loaded) continue;
    uint64_t n = 4;
    for (int64_t d : kv.second.shape) n *= (uint64_t)d;
    total += n;
  }
  return total;
}

}  // namespace fg
