#include "core/weights.h"

#include <cstring>

#include "core/dtype.h"
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

}  // namespace

WeightStore::WeightStore(const ModelSpec &s, bool keep_data) : spec_(s), keep_data_(keep_data) {
  for (TensorEntry &e : tensor_table(s)) {
    Tensor &t = tensors_[e.name];
    t.entry = std::move(e);
    index_[{t.entry.kind, t.entry.layer, t.entry.expert}] = &t;
  }
}

const TensorEntry *WeightStore::find(const char *name) const {
  auto it = name ? tensors_.find(name) : tensors_.end();
  return it == tensors_.end() ? nullptr : &it->second.entry;
}

const TensorEntry &WeightStore::check_load(const char *name, int32_t dtype, const int64_t *shape,
                                           int32_t ndim, const void *data, uint64_t nbytes) const {
  if (!name) raise(FG_ERR_INVALID_ARGUMENT, "load_tensor: null name");
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    if (std::string(name) == "lm_head" && spec_.tie_word_embeddings)
      raise(FG_ERR_NOT_FOUND, "load_tensor: 'lm_head' is not used: the spec ties word embeddings");
    raise(FG_ERR_NOT_FOUND, "load_tensor: unknown tensor '%s' (not a canonical name this spec needs)",
          name);
  }
  const Tensor &t = it->second;
  if (ndim < 0 || ndim > 8 || (ndim > 0 && !shape))
    raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': bad ndim %d", name, ndim);
  const std::vector<int64_t> &want = t.entry.shape;
  if ((size_t)ndim != want.size() || memcmp(shape, want.data(), ndim * sizeof(int64_t)) != 0)
    raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': expected shape %s, got %s", name,
          shape_str(want.data(), want.size()).c_str(), shape_str(shape, ndim).c_str());
  const size_t elem = dtype_size(dtype);
  if (!elem) raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': unknown dtype %d", name, dtype);
  uint64_t n = 1;
  for (int64_t d : want) n *= (uint64_t)d;
  if (nbytes != n * elem)
    raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': %llu bytes for %s of %zu-byte elements (want %llu)",
          name, (unsigned long long)nbytes, shape_str(shape, ndim).c_str(), elem,
          (unsigned long long)(n * elem));
  if (!data) raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': null data", name);
  return t.entry;
}

void WeightStore::load(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                       const void *data, uint64_t nbytes) {
  if (dtype == FG_F8_E4M3)
    raise(FG_ERR_INVALID_ARGUMENT,
          "load_tensor '%s': F8_E4M3 data needs its scales: load it with fg_engine_load_quantized_tensor",
          name ? name : "");
  check_load(name, dtype, shape, ndim, data, nbytes);
  Tensor &t = tensors_.at(name);
  t.loaded = true;
  if (!keep_data_) return;
  const uint64_t n = nbytes / dtype_size(dtype);
  std::unique_ptr<float[]> buf(new float[n]);
  to_f32(dtype, data, n, buf.get());
  t.data = std::move(buf);
}

WeightScales WeightStore::load_quantized(const char *name, int32_t dtype, const int64_t *shape,
                                         int32_t ndim, const void *data, uint64_t nbytes,
                                         WeightScales scales) {
  if (dtype != FG_F8_E4M3)
    raise(FG_ERR_INVALID_ARGUMENT, "load_quantized_tensor '%s': dtype %s; quantized weights are F8_E4M3",
          name ? name : "", dtype_name(dtype));
  check_load(name, dtype, shape, ndim, data, nbytes);
  Tensor &t = tensors_.at(name);
  if (t.entry.shape.size() != 2)
    raise(FG_ERR_INVALID_ARGUMENT, "load_quantized_tensor '%s': only matrices are quantized, this is %s",
          name, shape_str(t.entry.shape.data(), t.entry.shape.size()).c_str());
  const int64_t rows = t.entry.shape[0], cols = t.entry.shape[1];
  scales = check_scales(name, rows, cols, scales);
  t.loaded = true;
  if (!keep_data_) return scales;
  std::unique_ptr<float[]> buf(new float[(uint64_t)rows * cols]);
  dequantize_e4m3((const uint8_t *)data, rows, cols, scales, buf.get());
  t.data = std::move(buf);
  return scales;
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

const float *WeightStore::get(fg_tensor_kind kind, int32_t layer, int32_t expert) const {
  auto it = index_.find({kind, layer, expert});
  return it == index_.end() ? nullptr : it->second->data.get();
}

ModelWeights WeightStore::view() const {
  ModelWeights w;
  w.embed = get(FG_TENSOR_EMBED);
  w.pos_embed = get(FG_TENSOR_POS_EMBED);
  w.embed_proj_in = get(FG_TENSOR_EMBED_PROJ_IN);
  w.embed_proj_out = get(FG_TENSOR_EMBED_PROJ_OUT);
  for (int32_t i = 0; i < (int32_t)spec_.num_layers; i++) {
    LayerWeights l;
    auto at = [&](fg_tensor_kind k) { return get(k, i); };
    l.attn_norm = at(FG_TENSOR_ATTN_NORM), l.attn_norm_bias = at(FG_TENSOR_ATTN_NORM_BIAS);
    l.q = at(FG_TENSOR_Q), l.q_bias = at(FG_TENSOR_Q_BIAS);
    l.k = at(FG_TENSOR_K), l.k_bias = at(FG_TENSOR_K_BIAS);
    l.v = at(FG_TENSOR_V), l.v_bias = at(FG_TENSOR_V_BIAS);
    l.o = at(FG_TENSOR_O), l.o_bias = at(FG_TENSOR_O_BIAS);
    l.q_a = at(FG_TENSOR_Q_A), l.q_a_norm = at(FG_TENSOR_Q_A_NORM), l.q_b = at(FG_TENSOR_Q_B);
    l.kv_a = at(FG_TENSOR_KV_A), l.kv_a_norm = at(FG_TENSOR_KV_A_NORM), l.kv_b = at(FG_TENSOR_KV_B);
    l.q_norm = at(FG_TENSOR_Q_NORM), l.k_norm = at(FG_TENSOR_K_NORM);
    l.post_attn_norm = at(FG_TENSOR_POST_ATTN_NORM);
    l.mlp_norm = at(FG_TENSOR_MLP_NORM), l.mlp_norm_bias = at(FG_TENSOR_MLP_NORM_BIAS);
    l.gate = at(FG_TENSOR_GATE), l.gate_bias = at(FG_TENSOR_GATE_BIAS);
    l.up = at(FG_TENSOR_UP), l.up_bias = at(FG_TENSOR_UP_BIAS);
    l.down = at(FG_TENSOR_DOWN), l.down_bias = at(FG_TENSOR_DOWN_BIAS);
    l.post_mlp_norm = at(FG_TENSOR_POST_MLP_NORM);
    l.moe = spec_.moe_layer(i);
    l.router = at(FG_TENSOR_ROUTER);
    l.shared.gate = at(FG_TENSOR_SHARED_GATE);
    l.shared.up = at(FG_TENSOR_SHARED_UP);
    l.shared.down = at(FG_TENSOR_SHARED_DOWN);
    l.shared_expert_gate = at(FG_TENSOR_SHARED_EXPERT_GATE);
    for (int32_t e = 0; l.moe && e < (int32_t)spec_.num_experts; e++)
      l.experts.push_back({get(FG_TENSOR_EXPERT_GATE, i, e), get(FG_TENSOR_EXPERT_GATE_BIAS, i, e),
                           get(FG_TENSOR_EXPERT_UP, i, e), get(FG_TENSOR_EXPERT_UP_BIAS, i, e),
                           get(FG_TENSOR_EXPERT_DOWN, i, e), get(FG_TENSOR_EXPERT_DOWN_BIAS, i, e)});
    w.layers.push_back(l);
  }
  w.final_norm = get(FG_TENSOR_FINAL_NORM);
  w.final_norm_bias = get(FG_TENSOR_FINAL_NORM_BIAS);
  w.lm_head = spec_.tie_word_embeddings ? w.embed : get(FG_TENSOR_LM_HEAD);
  w.lm_head_bias = get(FG_TENSOR_LM_HEAD_BIAS);
  return w;
}

uint64_t WeightStore::bytes() const {
  uint64_t total = 0;
  for (const auto &kv : tensors_) {
    if (!kv.second.loaded) continue;
    uint64_t n = 4;
    for (int64_t d : kv.second.entry.shape) n *= (uint64_t)d;
    total += n;
  }
  return total;
}

}  // namespace fg
