// The canonical tensors of a model: ONE table, read by the weight store (names, shapes: through
// core/tensor_table.h), the CUDA backend (where each kind goes: cuda/load.cu) and TypeScript
// (fastgen.h fg_spec_tensors -> src/model/weights.ts). Adding a tensor kind is one line here (plus,
// in each backend, the kernel that uses it). Plain C, so cuda/cuda_api.h (nvcc) includes it; the
// shape and `needed` columns are C++ expressions over the spec, expanded only by tensor_table.cpp.
#pragma once
#include <stdint.h>

// X(id, scope, suffix, rows, cols, needed)
//   scope   HEAD: global, listed before the layers; LAYER: "layers.{i}.<suffix>";
//           EXPERT: "layers.{i}.experts.{e}.<suffix>" (e < num_experts); TAIL: global, after
//   shape   [rows, cols], or [rows] when cols is 0. Linear weights are [out_features, in_features].
//   needed  whether the spec has this tensor. Names over: s (ModelSpec), H hidden, I intermediate,
//           V vocab, D embed_dim, QD heads*head_dim, KVD kv_heads*head_dim, OD o's input width,
//           LN LayerNorm, HD head_dim, MI an expert's width, SI the shared expert's width;
//           per layer: MOE this layer routes to experts, DENSE it has the dense MLP (not MOE);
//           MLA multi-head latent attention, QL q_lora_rank, KL kv_lora_rank, R qk_rope_head_dim,
//           KVB heads*(qk_nope_head_dim + v_head_dim).
// The order is the order of fg_spec_tensors (and of "missing tensor" messages).
#define FG_TENSOR_KINDS(X)                                              \
  X(EMBED, HEAD, "embed", V, D, true)                                   \
  X(POS_EMBED, HEAD, "pos_embed", s.max_position_embeddings, H, !s.rope()) \
  X(EMBED_PROJ_IN, HEAD, "embed_proj_in", H, D, s.embed_proj())         \
  X(EMBED_PROJ_OUT, HEAD, "embed_proj_out", D, H, s.embed_proj())       \
  X(ATTN_NORM, LAYER, "attn_norm", H, 0, true)                          \
  X(ATTN_NORM_BIAS, LAYER, "attn_norm_bias", H, 0, LN)                  \
  X(Q, LAYER, "q", QD, H, !MLA || QL == 0)                              \
  X(K, LAYER, "k", KVD, H, !MLA)                                        \
  X(V, LAYER, "v", KVD, H, !MLA)                                        \
  X(O, LAYER, "o", H, OD, true)                                         \
  X(Q_A, LAYER, "q_a", QL, H, MLA && QL > 0)                            \
  X(Q_A_NORM, LAYER, "q_a_norm", QL, 0, MLA && QL > 0)                  \
  X(Q_B, LAYER, "q_b", QD, QL, MLA && QL > 0)                           \
  X(KV_A, LAYER, "kv_a", KL + R, H, MLA)                                \
  X(KV_A_NORM, LAYER, "kv_a_norm", KL, 0, MLA)                          \
  X(KV_B, LAYER, "kv_b", KVB, KL, MLA)                                  \
  X(Q_BIAS, LAYER, "q_bias", QD, 0, s.qkv_bias)                         \
  X(K_BIAS, LAYER, "k_bias", KVD, 0, s.qkv_bias)                        \
  X(V_BIAS, LAYER, "v_bias", KVD, 0, s.qkv_bias)                        \
  X(O_BIAS, LAYER, "o_bias", H, 0, s.o_bias)                            \
  X(Q_NORM, LAYER, "q_norm", HD, 0, s.qk_norm)                          \
  X(K_NORM, LAYER, "k_norm", HD, 0, s.qk_norm)                          \
  X(POST_ATTN_NORM, LAYER, "post_attn_norm", H, 0, s.sandwich_norms)    \
  X(MLP_NORM, LAYER, "mlp_norm", H, 0, s.has_mlp_norm())                \
  X(MLP_NORM_BIAS, LAYER, "mlp_norm_bias", H, 0, s.has_mlp_norm() && LN) \
  X(GATE, LAYER, "gate", I, H, DENSE && s.gated())                      \
  X(UP, LAYER, "up", I, H, DENSE)                                       \
  X(DOWN, LAYER, "down", H, I, DENSE)                                   \
  X(GATE_BIAS, LAYER, "gate_bias", I, 0, DENSE && s.gated() && s.mlp_bias) \
  X(UP_BIAS, LAYER, "up_bias", I, 0, DENSE && s.mlp_bias)               \
  X(DOWN_BIAS, LAYER, "down_bias", H, 0, DENSE && s.mlp_bias)           \
  X(POST_MLP_NORM, LAYER, "post_mlp_norm", H, 0, s.sandwich_norms)      \
  X(ROUTER, LAYER, "router", s.num_experts, H, MOE)                     \
  X(SHARED_GATE, LAYER, "shared_expert.gate", SI, H, MOE && s.shared_expert() && s.gated()) \
  X(SHARED_UP, LAYER, "shared_expert.up", SI, H, MOE && s.shared_expert()) \
  X(SHARED_DOWN, LAYER, "shared_expert.down", H, SI, MOE && s.shared_expert()) \
  X(SHARED_EXPERT_GATE, LAYER, "shared_expert_gate", 1, H, MOE && s.shared_expert_gate) \
  X(EXPERT_GATE, EXPERT, "gate", MI, H, s.gated())                      \
  X(EXPERT_UP, EXPERT, "up", MI, H, true)                               \
  X(EXPERT_DOWN, EXPERT, "down", H, MI, true)                           \
  X(EXPERT_GATE_BIAS, EXPERT, "gate_bias", MI, 0, s.gated() && s.mlp_bias) \
  X(EXPERT_UP_BIAS, EXPERT, "up_bias", MI, 0, s.mlp_bias)               \
  X(EXPERT_DOWN_BIAS, EXPERT, "down_bias", H, 0, s.mlp_bias)            \
  X(FINAL_NORM, TAIL, "final_norm", H, 0, s.final_norm)                 \
  X(FINAL_NORM_BIAS, TAIL, "final_norm_bias", H, 0, s.final_norm && LN) \
  X(LM_HEAD, TAIL, "lm_head", V, D, !s.tie_word_embeddings)             \
  X(LM_HEAD_BIAS, TAIL, "lm_head_bias", V, 0, s.lm_head_bias)

typedef enum fg_tensor_scope {
  FG_SCOPE_HEAD,
  FG_SCOPE_LAYER,
  FG_SCOPE_EXPERT,
  FG_SCOPE_TAIL,
} fg_tensor_scope;

#define FG_TENSOR_ENUM_(id, scope, suffix, rows, cols, needed) FG_TENSOR_##id,
typedef enum fg_tensor_kind { FG_TENSOR_KINDS(FG_TENSOR_ENUM_) FG_TENSOR_KIND_COUNT } fg_tensor_kind;
#undef FG_TENSOR_ENUM_

#define FG_TENSOR_SCOPE_(id, scope, suffix, rows, cols, needed) FG_SCOPE_##scope,
static const fg_tensor_scope fg_tensor_kind_scope[FG_TENSOR_KIND_COUNT] = {FG_TENSOR_KINDS(FG_TENSOR_SCOPE_)};
#undef FG_TENSOR_SCOPE_

