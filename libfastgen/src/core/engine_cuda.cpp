// fg_engine on the CUDA backend: the core validates names, shapes and batches exactly as for the
// CPU, then hands tensors and steps to the device side (cuda/cuda_api.h). Model features the
// device forward pass does not run yet are refused at create with FG_ERR_UNSUPPORTED.
#include <vector>

#include "core/batch.h"
#include "core/engine.h"
#include "core/error.h"

namespace {

// fgcu calls return 0 or an fg_status with a message in err.
void check(int rc, const char *err) {
  if (rc != 0) fg::raise((fg_status)rc, "%s", err);
}

int32_t act_of(fg::MlpKind k) {
  switch (k) {  // fgcu::ActKind order
    case fg::MlpKind::GatedSilu: return 0;
    case fg::MlpKind::GatedGelu: return 1;
    case fg::MlpKind::GatedGeluTanh: return 2;
    case fg::MlpKind::Gelu: return 3;
    case fg::MlpKind::GeluTanh: return 4;
    default: return 5;
  }
}

}  // namespace

void fg_engine::cuda_create() {
  const fg::ModelSpec &s = spec_;
  if (s.head_dim > 256) fg::raise(FG_ERR_UNSUPPORTED, "engine: the CUDA backend supports head_dim <= 256, got %lld", (long long)s.head_dim);
  if (s.hidden_size > 16384) fg::raise(FG_ERR_UNSUPPORTED, "engine: the CUDA backend supports hidden_size <= 16384");
  fgcu_model m{};
  m.vocab_size = s.vocab_size, m.hidden_size = s.hidden_size, m.intermediate_size = s.intermediate_size;
  m.num_layers = s.num_layers, m.num_heads = s.num_heads, m.num_kv_heads = s.num_kv_heads;
  m.head_dim = s.head_dim, m.max_position_embeddings = s.max_position_embeddings;
  m.norm_layer = s.norm == fg::NormKind::Layer;
  m.final_norm = s.final_norm;
  m.norm_eps = (float)s.norm_eps;
  m.learned_positions = !s.rope();
  m.rotary_dim = s.rope() ? (int32_t)s.rotary_dim : 0;
  m.inv_freq = rope_.inv_freq.data();
  m.sliding_window = (int32_t)s.sliding_window;
  m.qkv_bias = s.qkv_bias, m.o_bias = s.o_bias, m.mlp_bias = s.mlp_bias, m.lm_head_bias = s.lm_head_bias;
  m.act = act_of(s.mlp);
  m.parallel = s.parallel, m.parallel_mlp_norm = s.parallel_mlp_norm;
  m.tie_word_embeddings = s.tie_word_embeddings;
  m.num_experts = (int32_t)s.num_experts, m.experts_per_tok = (int32_t)s.num_experts_per_tok;
  m.embed_dim = s.embed_dim, m.post_norm = s.post_norm;
  std::vector<uint8_t> sliding(s.num_layers);  // the device side copies it at create
  for (int64_t l = 0; l < s.num_layers; l++) sliding[l] = s.sliding(l);
  m.layer_sliding = sliding.data();
  m.sliding_inv_freq = rope_.sliding_inv_freq.empty() ? nullptr : rope_.sliding_inv_freq.data();
  m.rope_attention_factor = (float)rope_.attention_factor;
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
  std::vector<uint8_t> dense(s.num_layers);  // copied at create, like sliding
  for (int64_t l = 0; l < s.num_layers; l++) dense[l] = s.moe() && s.dense_layer[l];
  m.layer_dense = dense.data();
  m.moe_num_groups = (int32_t)s.moe_num_groups, m.moe_topk_groups = (int32_t)s.moe_topk_groups;
  m.moe_routed_scale = (float)s.moe_routed_scale;
  char err[512] = "";
  check(fgcu_engine_create(&m, (int32_t)s.tensor_parallel, (int32_t)s.collective_timeout_ms, &cuda_, err), err);
}

void fg_engine::cuda_load(const char *name, int32_t dtype, const void *data, uint64_t nbytes) {
  const fg::TensorEntry *t = weights_.find(name);  // load_tensor checked it is one of the spec's
  if (!t) fg::raise(FG_ERR_INTERNAL, "load_tensor '%s': not in the tensor table", name);
  const uint64_t numel = nbytes / (dtype == FG_F32 ? 4 : 2);
  char err[512] = "";
  check(fgcu_engine_load(cuda_, t->layer, t->expert, t->kind, dtype, data, numel, err), err);
}

void fg_engine::cuda_finalize(const fg_kv_config *kv) {
  const fg_kv_config dflt{};
  if (!kv) kv = &dflt;
  if (kv->block_size < 0 || kv->block_size > 65536)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "kv config: block_size must be in [0, 65536], got %d", kv->block_size);
  if (kv->num_blocks < 0)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "kv config: num_blocks must be >= 0, got %d", kv->num_blocks);
  if (!(kv->memory_fraction >= 0 && kv->memory_fraction <= 1))
    fg::raise(FG_ERR_INVALID_ARGUMENT, "kv config: memory_fraction must be in [0, 1], got %g",
              (double)kv->memory_fraction);
  char err[512] = "";
  check(fgcu_engine_finalize(cuda_, kv->block_size, kv->num_blocks, kv->memory_fraction, &cuda_info_, err), err);
  cuda_finalized_ = true;
}

void fg_engine::cuda_launch(bool overlap) {
  // Tensor-parallel ranks take one job at a time (tp.cu): their steps run whole, from finish.
  if (!overlap || spec_.tensor_parallel > 1) return;
  char err[512] = "";
  check(fgcu_engine_launch(cuda_, &pass_.batch, err), err);
  pass_.started = true;
}

void fg_engine::cuda_finish(const fg_step_late *late, fg_step_output *out) {
  char err[512] = "";
  if (!pass_.started) {
    const fg_batch b = fg::with_late(pass_.batch, late);
    check(fgcu_engine_step(cuda_, &b, out, err), err);
    return;
  }
  const bool has = late && late->row_masks;
  check(fgcu_engine_finish(cuda_, has ? late->row_masks : nullptr, has ? late->masks : nullptr,
                           has ? late->num_masks : 0, out, err),
        err);
}
