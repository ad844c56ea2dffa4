// Host weight store: the tensors the spec needs, by canonical name, converted to fp32. Quantized
// weights (FP8 + scales) are dequantized exactly on the way in: the CPU backend computes with the
// values the checkpoint means (core/fp8.h).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/fp8.h"
#include "core/spec.h"
#include "core/tensor_table.h"

namespace fg {

// One MLP's weights (a dense layer's, or one expert's); biases may be null, gate is null for
// plain (non-gated) MLPs.
struct MlpWeights {
  const float *gate = nullptr, *gate_bias = nullptr;  // [intermediate, hidden]
  const float *up = nullptr, *up_bias = nullptr;      // [intermediate, hidden]
  const float *down = nullptr, *down_bias = nullptr;  // [hidden, intermediate]
};

// Pointers into the store for one decoder layer; a bias or norm that the spec does not use
// is nullptr. Linear weights are [out_features, in_features].
struct LayerWeights {
  const float *attn_norm = nullptr, *attn_norm_bias = nullptr;  // [hidden]
  const float *q = nullptr, *q_bias = nullptr;                  // [heads*head_dim, hidden]
  const float *k = nullptr, *k_bias = nullptr;                  // [kv_heads*head_dim, hidden]
  const float *v = nullptr, *v_bias = nullptr;                  // [kv_heads*head_dim, hidden]
  const float *o = nullptr, *o_bias = nullptr;                  // [hidden, o_dim]
  // MLA: q = q_b(q_a_norm(q_a x)) (or q x), latent | k_pe = kv_a x, k/v heads = kv_b latent
  const float *q_a = nullptr, *q_a_norm = nullptr;              // [q_lora_rank, hidden], [q_lora_rank]
  const float *q_b = nullptr;                                   // [heads*head_dim, q_lora_rank]
  const float *kv_a = nullptr;                                  // [kv_lora_rank + rope_dim, hidden]
  const float *kv_a_norm = nullptr;                             // [kv_lora_rank]
  const float *kv_b = nullptr;                                  // [heads*(nope + v), kv_lora_rank]
  const float *q_norm = nullptr, *k_norm = nullptr;             // [head_dim] (qk_norm)
  const float *post_attn_norm = nullptr;                        // [hidden] (sandwich_norms)
  const float *mlp_norm = nullptr, *mlp_norm_bias = nullptr;    // [hidden]
  const float *gate = nullptr, *gate_bias = nullptr;            // [intermediate, hidden]
  const float *up = nullptr, *up_bias = nullptr;                // [intermediate, hidden]
  const float *down = nullptr, *down_bias = nullptr;            // [hidden, intermediate]
  const float *post_mlp_norm = nullptr;                         // [hidden] (sandwich_norms)
  bool moe = false;                      // this layer routes to experts (else the dense MLP)
  const float *router = nullptr;                                // [num_experts, hidden] (MoE)
  std::vector<MlpWeights> experts;                              // [num_experts] (MoE), width MI
  MlpWeights shared;                     // the shared expert (no biases), width SI; up null: none
  const float *shared_expert_gate = nullptr;                    // [1, hidden]

  MlpWeights mlp() const { return {gate, gate_bias, up, up_bias, down, down_bias}; }
};

struct ModelWeights {
  const float *embed = nullptr;           // [vocab, embed_dim]
  const float *pos_embed = nullptr;       // [max_position_embeddings, hidden] (learned positions)
  const float *embed_proj_in = nullptr;   // [hidden, embed_dim] (embed_dim != hidden)
  const float *embed_proj_out = nullptr;  // [embed_dim, hidden] (embed_dim != hidden)
  std::vector<LayerWeights> layers;
  const float *final_norm = nullptr, *final_norm_bias = nullptr;  // [hidden]
  const float *lm_head = nullptr, *lm_head_bias = nullptr;        // [vocab, embed_dim], [vocab]
};

class WeightStore {
 public:
  // keep_data false: load() checks and records presence only (the CUDA backend keeps its own
  // device copy), so no host copy of the weights is made.
  explicit WeightStore(const ModelSpec &spec, bool keep_data = true);

  // The table entry of a tensor this spec needs; nullptr for any other name.
  const TensorEntry *find(const char *name) const;
  // The entry of `name` once the name, shape, dtype and byte count of a load check out; throws
  // NOT_FOUND / INVALID_ARGUMENT naming what is wrong. Stores nothing.
  const TensorEntry &check_load(const char *name, int32_t dtype, const int64_t *shape,
                                int32_t ndim, const void *data, uint64_t nbytes) const;
  // Checks name and shape against the spec, converts F32/F16/BF16 -> fp32 and stores a copy
  // (replacing an earlier load of the same name).
  void load(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim, const void *data,
            uint64_t nbytes);
  // The same for a quantized matrix (fastgen.h fg_engine_load_quantized_tensor): checks dtype
  // (FG_F8_E4M3) and scales too, and stores the weight dequantized to fp32. Returns the scales
  // with their block sizes resolved (core/fp8.h check_scales).
  WeightScales load_quantized(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                              const void *data, uint64_t nbytes, WeightScales scales);
  // Throws FG_ERR_NOT_FOUND naming the missing tensors.
  void check_complete() const;
  // Pointers for the forward pass; call after check_complete().
  ModelWeights view() const;
  uint64_t bytes() const;

 private:
  struct Tensor {
    TensorEntry entry;              // name, kind, layer, expert, shape (core/tensor_kinds.h)
    std::unique_ptr<float[]> data;  // null until loaded (and always without keep_data)
    bool loaded = false;
  };
  // nullptr when the spec does not use it
  const float *get(fg_tensor_kind kind, int32_t layer = -1, int32_t expert = -1) const;
  std::map<std::string, Tensor> tensors_;  // every tensor the spec needs, by name
  std::map<std::tuple<int32_t, int32_t, int32_t>, const Tensor *> index_;  // (kind, layer, expert)
  ModelSpec spec_;
  bool keep_data_ = true;
};

}  // namespace fg
