// The tensor table (tensor_kinds.h) expanded for one spec, and fg_spec_tensors, which gives it to
// TypeScript so the loader checks a checkpoint against the same list the engine will.
#include "core/tensor_table.h"

#include "core/error.h"
#include "core/guard.h"

namespace fg {
namespace {

struct Kind {
  fg_tensor_kind kind;
  fg_tensor_scope scope;
  const char *suffix;
  int64_t rows, cols;
  bool needed;
};

// The table's rows for spec s at one layer (-1 for HEAD and TAIL kinds), with the names its
// columns use (see tensor_kinds.h).
std::vector<Kind> kinds_of(const ModelSpec &s, int32_t layer) {
  const int64_t H = s.hidden_size, I = s.intermediate_size, V = s.vocab_size, D = s.embed_dim;
  const int64_t QD = s.q_dim(), KVD = s.kv_dim(), OD = s.o_dim();
  const int64_t HD = s.head_dim, MI = s.moe_intermediate_size, SI = s.shared_expert_intermediate_size;
  const int64_t QL = s.q_lora_rank, KL = s.kv_lora_rank, R = s.qk_rope_head_dim;
  const int64_t KVB = s.num_heads * (s.qk_nope_head_dim + s.v_head_dim);
  const bool LN = s.norm == NormKind::Layer, MLA = s.mla();
  const bool MOE = layer >= 0 && s.moe_layer(layer), DENSE = !MOE;
  (void)H, (void)I, (void)V, (void)D, (void)QD, (void)KVD, (void)OD, (void)LN, (void)DENSE, (void)HD, (void)MI,
      (void)SI, (void)QL, (void)KL, (void)R, (void)KVB, (void)MLA, (void)MOE;
#define FG_TENSOR_ROW_(id, scope, suffix, rows, cols, needed) \
  {FG_TENSOR_##id, FG_SCOPE_##scope, suffix, (int64_t)(rows), (int64_t)(cols), (bool)(needed)},
  return {FG_TENSOR_KINDS(FG_TENSOR_ROW_)};
#undef FG_TENSOR_ROW_
}

void add(std::vector<TensorEntry> &out, const Kind &k, const std::string &prefix, int32_t layer,
         int32_t expert) {
  if (!k.needed) return;
  TensorEntry e;
  e.name = prefix + k.suffix;
  e.kind = k.kind, e.layer = layer, e.expert = expert;
  e.shape = k.cols ? std::vector<int64_t>{k.rows, k.cols} : std::vector<int64_t>{k.rows};
  out.push_back(std::move(e));
}

}  // namespace

std::vector<TensorEntry> tensor_table(const ModelSpec &s) {
  const std::vector<Kind> kinds = kinds_of(s, -1);
  std::vector<TensorEntry> out;
  for (const Kind &k : kinds)
    if (k.scope == FG_SCOPE_HEAD) add(out, k, "", -1, -1);
  for (int32_t i = 0; i < (int32_t)s.num_layers; i++) {
    const std::string p = "layers." + std::to_string(i) + ".";
    const std::vector<Kind> layer = kinds_of(s, i);
    for (const Kind &k : layer)
      if (k.scope == FG_SCOPE_LAYER) add(out, k, p, i, -1);
    for (int32_t e = 0; s.moe_layer(i) && e < (int32_t)s.num_experts; e++)
      for (const Kind &k : layer)
        if (k.scope == FG_SCOPE_EXPERT) add(out, k, p + "experts." + std::to_string(e) + ".", i, e);
  }
  for (const Kind &k : kinds)
    if (k.scope == FG_SCOPE_TAIL) add(out, k, "", -1, -1);
  return out;
}

}  // namespace fg

extern "C" fg_status fg_spec_tensors(const char *spec_json, const char **out_json) {
  thread_local std::string json;
  return fg::guard(__func__, [&] {
    if (!out_json) fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_spec_tensors: out_json is null");
    *out_json = nullptr;
    std::string j = "[";
    for (const fg::TensorEntry &t : fg::tensor_table(fg::parse_spec(spec_json))) {
      j += j.size() > 1 ? ",[\"" : "[\"";
      j += t.name + "\",[";
      for (size_t d = 0; d < t.shape.size(); d++) j += (d ? "," : "") + std::to_string(t.shape[d]);
      j += "]]";
    }
    json = j + "]";
    *out_json = json.c_str();
  });
}
