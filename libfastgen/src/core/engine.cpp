// fg_engine's life cycle: create, load, finalize, info (the steps: step.cpp; FP8: engine_quant.cpp).
#include "core/engine.h"

#include "core/error.h"

fg_engine::fg_engine(const char *spec_json, int32_t backend)
    : spec_(fg::parse_spec(spec_json)),
      backend_id_(backend),
      kind_(fg::backend_kind(backend, "engine")),
      weights_(spec_, kind_.host_weights),
      rope_(fg::rope_freqs(spec_)) {
  backend_ = kind_.create(fg::EngineState{spec_, rope_, weights_, penalties_});
}

void fg_engine::load_tensor(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                            const void *data, uint64_t nbytes) {
  std::lock_guard<std::mutex> lk(mu_);
  if (finalized_) fg::raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': engine is already finalized", name ? name : "");
  const fg::TensorEntry *t = weights_.find(name);
  // --quantization fp8, or a part of a projection whose first part the backend holds FP8
  const bool to_fp8 = spec_.quantize_fp8 || (t && backend_->wants_fp8(*t));
  if (to_fp8 && t && fg::fp8_capable(t->kind) && dtype != FG_F8_E4M3)
    return quantize_and_load(name, dtype, shape, ndim, data, nbytes);
  weights_.load(name, dtype, shape, ndim, data, nbytes);  // checks name and shape: t is set
  backend_->load(*t, dtype, data, nbytes);
}

void fg_engine::finalize(const fg_kv_config *kv) {
  std::lock_guard<std::mutex> lk(mu_);
  if (finalized_) fg::raise(FG_ERR_INVALID_ARGUMENT, "finalize: engine is already finalized");
  weights_.check_complete();
  check_kv_dtype(kv);
  backend_->finalize(kv);
  finalized_ = true;
}

fg_engine_info fg_engine::info() const {
  std::lock_guard<std::mutex> lk(mu_);
  fg_engine_info i{};
  i.vocab_size = (int32_t)spec_.vocab_size;
  i.max_position_embeddings = (int32_t)spec_.max_position_embeddings;
  i.backend = backend_id_;
  const fg::Backend::KvShape kv = backend_->kv_shape();
  i.num_blocks = kv.num_blocks;
  i.block_size = kv.block_size;
  backend_->info(i);
  return i;
}

void fg_engine::debug_fail_status(int32_t status) {
  if (status <= FG_OK || status > FG_ERR_INTERNAL)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "debug_fail_status: %d is not an error status", status);
  std::lock_guard<std::mutex> lk(mu_);
  fail_status_ = (fg_status)status;
}

void fg_engine::debug_fail_next_steps(int32_t count) {
  if (count < 0) fg::raise(FG_ERR_INVALID_ARGUMENT, "debug_fail_next_steps: count must be >= 0, got %d", count);
  std::lock_guard<std::mutex> lk(mu_);
  fail_steps_ = count;
}
