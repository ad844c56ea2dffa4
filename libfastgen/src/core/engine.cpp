#include "core/engine.h"

#include "core/error.h"
#include "cpu/thread_pool.h"

namespace {

// Spec features the CUDA forward pass has no kernels for yet: refused at create, before any
// device work, so a caller can fall back to the CPU backend.
void check_cuda_runs(const fg::ModelSpec &s) {
  if (s.mla() && s.tensor_parallel > 1)
    fg::raise(FG_ERR_UNSUPPORTED,
              "engine: attention \"mla\" (DeepSeek's multi-head latent attention) runs on one GPU on the CUDA "
              "backend (tensor_parallel 1), got tensor_parallel %lld",
              (long long)s.tensor_parallel);
}

}  // namespace

fg_engine::fg_engine(const char *spec_json, int32_t backend)
    : spec_(fg::parse_spec(spec_json)), weights_(spec_, /*keep_data=*/backend != FG_BACKEND_CUDA) {
  backend_ = backend;
  if (backend != FG_BACKEND_CPU && backend != FG_BACKEND_CUDA)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "engine: unknown backend %d", backend);
  rope_ = fg::rope_freqs(spec_);
  if (backend == FG_BACKEND_CPU && spec_.tensor_parallel > 1)
    fg::raise(FG_ERR_UNSUPPORTED, "engine: tensor_parallel %lld needs the CUDA backend (the CPU backend runs one rank)",
              (long long)spec_.tensor_parallel);
  if (backend == FG_BACKEND_CUDA) {
    check_cuda_runs(spec_);
    if (spec_.quantize_fp8) require_fp8_gpu("--quantization fp8");
    cuda_create();
  }
}

fg_engine::~fg_engine() { fgcu_engine_destroy(cuda_); }

void fg_engine::load_tensor(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                            const void *data, uint64_t nbytes) {
  std::lock_guard<std::mutex> lk(mu_);
  if (finalized()) fg::raise(FG_ERR_INVALID_ARGUMENT, "load_tensor '%s': engine is already finalized", name ? name : "");
  const fg::TensorEntry *t = weights_.find(name);
  // --quantization fp8, or (CUDA) a part of a projection whose first part came FP8
  const bool to_fp8 = spec_.quantize_fp8 || (backend_ == FG_BACKEND_CUDA && t && cuda_weight_dtype(*t) == kCudaFp8);
  if (to_fp8 && t && fg::fp8_capable(t->kind) && dtype != FG_F8_E4M3)
    return quantize_and_load(name, dtype, shape, ndim, data, nbytes);
  weights_.load(name, dtype, shape, ndim, data, nbytes);  // checks name and shape
  if (backend_ == FG_BACKEND_CUDA) cuda_load(name, dtype, data, nbytes);
}

void fg_engine::finalize(const fg_kv_config *kv) {
  std::lock_guard<std::mutex> lk(mu_);
  if (finalized()) fg::raise(FG_ERR_INVALID_ARGUMENT, "finalize: engine is already finalized");
  weights_.check_complete();
  check_kv_dtype(kv);
  if (backend_ == FG_BACKEND_CUDA) return cuda_finalize(kv);
  kv_.reset(new fg::KvPool(spec_, kv));
  view_ = weights_.view();
  kv_layers_ = cpu_kv_layers(kv);
}

fg_engine_info fg_engine::info() const {
  std::lock_guard<std::mutex> lk(mu_);
  fg_engine_info i{};
  if (backend_ == FG_BACKEND_CUDA) {
    i.num_blocks = cuda_info_.num_blocks;
    i.block_size = cuda_info_.block_size;
    i.vocab_size = (int32_t)spec_.vocab_size;
    i.max_position_embeddings = (int32_t)spec_.max_position_embeddings;
    i.backend = FG_BACKEND_CUDA;
    i.weight_bytes = cuda_info_.weight_bytes;
    i.kv_bytes = cuda_info_.kv_bytes;
    return i;
  }
  i.num_blocks = kv_ ? kv_->num_blocks() : 0;
  i.block_size = kv_ ? kv_->block_size() : 0;
  i.vocab_size = (int32_t)spec_.vocab_size;
  i.max_position_embeddings = (int32_t)spec_.max_position_embeddings;
  i.backend = FG_BACKEND_CPU;
  i.num_threads = fg::cpu::num_threads();
  i.weight_bytes = weights_.bytes();
  i.kv_bytes = kv_ ? kv_->bytes() : 0;
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
