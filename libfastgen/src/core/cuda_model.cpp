#include "core/cuda_model.h"

#include "core/error.h"

namespace fg {
namespace {

int32_t act_of(MlpKind k) {
  switch (k) {  // fgcu::ActKind order
    case MlpKind::GatedSilu: return 0;
    case MlpKind::GatedGelu: return 1;
    case MlpKind::GatedGeluTanh: return 2;
    case MlpKind::Gelu: return 3;
    case MlpKind::GeluTanh: return 4;
    default: return 5;
  }
}

}  // namespace

void check_cuda_runs(const ModelSpec &s) {
  if (s.mla() && s.tensor_parallel > 1)
    raise(FG_ERR_UNSUPPORTED,
          "engine: attention \"mla\" (DeepSeek's multi-head latent attention) runs on one GPU on the CUDA "
          "backend (tensor_parallel 1), got tensor_parallel %lld",
          (long long)s.tensor_parallel);
}

fgcu_model cuda_model(const ModelSpec &s, const RopeFreqs &rope, CudaLayerFlags *flags) {
  if (s.head_dim > 256) raise(FG_ERR_UNSUPPORTED, "engine: the CUDA backend supports head_dim <= 256, got %lld", (long long)s.head_dim);
  if (s.hidden_size > 16384) raise(FG_ERR_UNSUPPORTED, "engine: the CUDA backend supports hidden_size <= 16384");
  fgcu_model m{};
  m.vocab_size = s.vocab_size, m.hidden_size = s.hidden_size, m.intermediate_size = s.intermediate_size;
  m.num_layers = s.num_layers, m.num_heads = s.num_heads, m.num_kv_heads = s.num_kv_heads;
  m.head_dim = s.head_dim, m.max_position_embeddings = s.max_position_embeddings;
  m.norm_layer = s.norm == NormKind::Layer;
  m.final_norm = s.final_norm;
  m.norm_eps = (float)s.norm_eps;
  m.learned_positions = !s.rope();
  m.rotary_dim = s.rope() ? (int32_t)s.rotary_dim : 0;
  m.inv_freq = rope.inv_freq.data();
  m.sliding_window = (int32_t)s.sliding_window;
  m.qkv_bias = s.qkv_bias, m.o_bias = s.o_bias, m.mlp_bias = s.mlp_bias, m.lm_head_bias = s.lm_head_bias;
  m.act = act_of(s.mlp);
  m.parallel = s.parallel, m.parallel_mlp_norm = s.parallel_mlp_norm;
  m.tie_word_embeddings = s.tie_word_embeddings;
  m.num_experts = (int32_t)s.num_experts, m.experts_per_tok = (int32_t)s.num_experts_per_tok;
  m.embed_dim = s.embed_dim, m.post_norm = s.post_norm;
  flags->sliding.assign(s.num_layers, 0);
  for (int64_t l = 0; l < s.num_layers; l++) flags->sliding[l] = s.sliding(l);
  m.layer_sliding = flags->sliding.data();
  m.sliding_inv_freq = rope.sliding_inv_freq.empty() ? nullptr : rope.sliding_inv_freq.data();
  m.rope_attention_factor = (float)rope.attention_factor;
  m.qk_norm = s.qk_norm;
  m.norm_weight_offset = (float)s.norm_weight_offset;
  m.sandwich_norms = s.sandwich_norms;
  m.embed_scale = (float)s.embed_scale;
  m.attn_scale = (float)s.softmax_scale();
  m.attn_logit_softcap = (float)s.attn_logit_softcap;
  m.final_logit_softcap = (float)s.final_logit_softcap;
  m.moe_intermediate_size = s.moe_intermediate_size;
  m.moe_renormalize = s.moe_renormalize;
  m.shared_expert_gate = s.shared_expert_gate;
  m.shared_expert_intermediate_size = s.shared_expert_intermediate_size;
  m.rope_interleaved = s.rope_interleaved;
  m.mla = s.mla();
  m.kv_lora_rank = s.kv_lora_rank, m.q_lora_rank = s.q_lora_rank;
  m.qk_nope_head_dim = s.qk_nope_head_dim, m.qk_rope_head_dim = s.qk_rope_head_dim, m.v_head_dim = s.v_head_dim;
  m.latent_norm_eps = (float)s.latent_norm_eps;
  flags->dense.assign(s.num_layers, 0);
  for (int64_t l = 0; l < s.num_layers; l++) flags->dense[l] = s.moe() && s.dense_layer[l];
  m.layer_dense = flags->dense.data();
  m.moe_num_groups = (int32_t)s.moe_num_groups, m.moe_topk_groups = (int32_t)s.moe_topk_groups;
  m.moe_routed_scale = (float)s.moe_routed_scale;
  return m;
}

}  // namespace fg
