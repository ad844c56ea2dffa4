// The CUDA backend's test hooks (backend.h OpHooks): each stage on device 0 over host buffers,
// through cuda/cuda_api.h (hooks.cu, op_hooks.cu). Arguments were checked by test_hooks.cpp.
#include "core/backend.h"
#include "core/error.h"
#include "core/op_hooks.h"
#include "cuda/cuda_api.h"

namespace fg {
namespace {

// fgcu calls return 0 or an fg_status with a message in err.
void check(int rc, const char *err) {
  if (rc != 0) raise((fg_status)rc, "%s", err);
}

void paged_attention(const fg_batch *b, const float *q, const float *k_cache, const float *v_cache, float *out,
                     int32_t num_heads, int32_t num_kv_heads, int32_t head_dim, int32_t block_size,
                     int32_t num_blocks, int32_t window, float scale, float softcap, int32_t splits,
                     int32_t kernel, const HookKvFp8 *fp8) {
  char err[512] = "";
  check(fgcu_attention_host(b, q, k_cache, v_cache, out, num_heads, num_kv_heads, head_dim, block_size, num_blocks,
                            window, scale, softcap, splits, kernel, fp8 != nullptr, fp8 ? fp8->k_scale : 1.0f,
                            fp8 ? fp8->v_scale : 1.0f, err),
        err);
}

void mla_attention(const fg_batch *b, const float *q, const float *cache, float *out, int32_t num_heads,
                   int32_t latent, int32_t rope, int32_t block_size, int32_t num_blocks, int32_t window, float scale,
                   float softcap, int32_t splits, const HookKvFp8 *fp8) {
  char err[512] = "";
  check(fgcu_mla_attention_host(b, q, cache, out, num_heads, latent, rope, block_size, num_blocks, window, scale,
                                softcap, splits, fp8 != nullptr, fp8 ? fp8->k_scale : 1.0f, err),
        err);
}

void sample(const fg_batch *b, const float *logits, int32_t vocab, fg_step_output *out) {
  char err[512] = "";
  check(fgcu_sample_host(b, logits, vocab, out, err), err);
}

void run_op(int32_t op, const int32_t *dims, const float *params, void *const *bufs) {
  char err[512] = "";
  const int rc = fgcu_op_host(op, dims, params, bufs, err);
  if (rc != 0) raise((fg_status)rc, "fg_run_op %s: %s", op_arity(op).name, err);
}

}  // namespace

const OpHooks kCudaOps = {paged_attention, mla_attention, sample, run_op};

}  // namespace fg
