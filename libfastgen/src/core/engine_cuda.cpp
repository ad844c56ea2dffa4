// fg_engine on the CUDA backend: the core validates names, shapes and batches exactly as for the
// CPU, then hands tensors and steps to the device side (cuda/cuda_api.h). Model features the
// device forward pass does not run yet are refused at create with FG_ERR_UNSUPPORTED.
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/batch.h"
#include "core/engine.h"
#include "core/error.h"

namespace {

// fgcu calls return 0 or an fg_status with a message in err.
void check(int rc, const char *err) {
  if (rc != 0) fg::raise((fg_status)rc, "%s", err);
}

struct SlotName {
  const char *suffix;
  fgcu_slot slot;
};

const SlotName kLayerSlots[] = {
    {"attn_norm", FGCU_ATTN_NORM}, {"attn_norm_bias", FGCU_ATTN_NORM_BIAS}, {"q", FGCU_Q},
    {"k", FGCU_K}, {"v", FGCU_V}, {"q_bias", FGCU_Q_BIAS}, {"k_bias", FGCU_K_BIAS},
    {"v_bias", FGCU_V_BIAS}, {"o", FGCU_O}, {"o_bias", FGCU_O_BIAS}, {"mlp_norm", FGCU_MLP_NORM},
    {"mlp_norm_bias", FGCU_MLP_NORM_BIAS}, {"gate", FGCU_GATE}, {"gate_bias", FGCU_GATE_BIAS},
    {"up", FGCU_UP}, {"up_bias", FGCU_UP_BIAS}, {"down", FGCU_DOWN}, {"down_bias", FGCU_DOWN_BIAS},
    {"router", FGCU_ROUTER},
};
const SlotName kExpertSlots[] = {  // layers.{i}.experts.{e}.{suffix}
    {"gate", FGCU_EXPERT_GATE}, {"gate_bias", FGCU_EXPERT_GATE_BIAS}, {"up", FGCU_EXPERT_UP},
    {"up_bias", FGCU_EXPERT_UP_BIAS}, {"down", FGCU_EXPERT_DOWN}, {"down_bias", FGCU_EXPERT_DOWN_BIAS},
};
const SlotName kGlobalSlots[] = {
    {"embed", FGCU_EMBED}, {"pos_embed", FGCU_POS_EMBED}, {"final_norm", FGCU_FINAL_NORM},
    {"final_norm_bias", FGCU_FINAL_NORM_BIAS}, {"lm_head", FGCU_LM_HEAD},
    {"lm_head_bias", FGCU_LM_HEAD_BIAS}, {"embed_proj_in", FGCU_EMBED_PROJ_IN},
    {"embed_proj_out", FGCU_EMBED_PROJ_OUT},
};

// "layers.{i}.{suffix}", "layers.{i}.experts.{e}.{suffix}" or a global name -> (layer or -1,
// expert or -1, slot); false when unknown.
bool slot_of(const char *name, int32_t *layer, int32_t *expert, fgcu_slot *slot) {
  *layer = -1, *expert = -1;
  const char *suffix = name;
  if (strncmp(name, "layers.", 7) == 0) {
    char *end = nullptr;
    const long i = strtol(name + 7, &end, 10);
    if (end == name + 7 || *end != '.') return false;
    *layer = (int32_t)i;
    suffix = end + 1;
    if (strncmp(suffix, "experts.", 8) == 0) {
      const long x = strtol(suffix + 8, &end, 10);
      if (end == suffix + 8 || *end != '.') return false;
      *expert = (int32_t)x;
      for (const SlotName &s : kExpertSlots)
        if (strcmp(end + 1, s.suffix) == 0) return *slot = s.slot, true;
      return false;
    }
    for (const SlotName &s : kLayerSlots)
      if (strcmp(suffix, s.suffix) == 0) return *slot = s.slot, true;
    return false;
  }
  for (const SlotName &s : kGlobalSlots)
    if (strcmp(suffix, s.suffix) == 0) return *slot = s.slot, true;
  return false;
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
  m.inv_freq = inv_freq_.data();
  m.sliding_window = (int32_t)s.sliding_window;
  m.qkv_bias = s.qkv_bias, m.o_bias = s.o_bias, m.mlp_bias = s.mlp_bias, m.lm_head_bias = s.lm_head_bias;
  m.act = act_of(s.mlp);
  m.parallel = s.parallel, m.parallel_mlp_norm = s.parallel_mlp_norm;
  m.tie_word_embeddings = s.tie_word_embeddings;
  m.num_experts = (int32_t)s.num_experts, m.experts_per_tok = (int32_t)s.num_experts_per_tok;
  m.embed_dim = s.embed_dim, m.post_norm = s.post_norm;
  char err[512] = "";
  check(fgcu_group_create(&m, (int32_t)s.tensor_parallel, (int32_t)s.collective_timeout_ms, &cuda_, err), err);
}

void fg_engine::cuda_load(const char *name, int32_t dtype, const void *data, uint64_t nbytes) {
  int32_t layer, expert;
  fgcu_slot slot;
  if (!slot_of(name, &layer, &expert, &slot))
    fg::raise(FG_ERR_UNSUPPORTED, "load_tensor '%s': the CUDA backend has no place for this tensor", name);
  const uint64_t numel = nbytes / (dtype == FG_F32 ? 4 : 2);
  char err[512] = "";
  check(fgcu_group_load(cuda_, layer, expert, slot, dtype, data, numel, err), err);
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
  check(fgcu_group_finalize(cuda_, kv->block_size, kv->num_blocks, kv->memory_fraction, &cuda_info_, err), err);
  cuda_finalized_ = true;
}

void fg_engine::cuda_step(const fg_batch *b, fg_step_output *out) {
  fg::validate_batch(spec_, cuda_info_.num_blocks, cuda_info_.block_size, b, out);
  char err[512] = "";
  check(fgcu_group_step(cuda_, b, out, err), err);
}
