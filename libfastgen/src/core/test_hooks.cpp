// Test hooks of fastgen.h (fg_paged_attention(_fp8), fg_mla_attention(_fp8), fg_sample_logits, fg_run_op): one
// stage of fg_step on host buffers, on either backend (backend.h OpHooks), so test/gpu can hold
// each CUDA op against its CPU twin; and the weight store's FP8 arithmetic (fg_dequantize,
// fg_quantize_fp8).
#include <climits>
#include <cmath>

#include "core/backend.h"
#include "core/batch.h"
#include "core/error.h"
#include "core/fp8.h"
#include "core/guard.h"
#include "core/op_hooks.h"
#include "core/status.h"

namespace {

// The attention hooks' batch: sample rows dropped (the hooks sample nothing), validated against a
// cache of num_blocks blocks of block_size.
fg_batch attention_batch(const fg_batch *batch, int32_t num_blocks, int32_t block_size) {
  fg::ModelSpec spec;  // only what validate_batch reads
  spec.vocab_size = INT32_MAX;
  spec.max_position_embeddings = INT32_MAX;
  fg_batch no_rows{};
  if (batch) no_rows = *batch, no_rows.num_rows = 0, no_rows.row_indptr = nullptr;
  fg::validate_batch(spec, num_blocks, block_size, batch ? &no_rows : nullptr);
  return no_rows;
}

// fg_paged_attention(_fp8): fp8 null for the backend's own cache dtype; kernel as fastgen.h says.
void paged_attention_hook(const char *fn, int32_t backend, const fg_batch *batch, const float *q, const float *k_cache,
                          const float *v_cache, float *out, int32_t num_heads, int32_t num_kv_heads, int32_t head_dim,
                          int32_t block_size, int32_t num_blocks, int32_t window, float scale, float softcap,
                          int32_t splits, int32_t kernel, const fg::HookKvFp8 *fp8) {
  const fg::OpHooks &ops = fg::backend_kind(backend, fn).ops;
  if (!q || !k_cache || !v_cache || !out || num_heads < 1 || num_kv_heads < 1 || num_heads % num_kv_heads != 0 ||
      head_dim < 1 || head_dim > 256 || block_size < 1 || num_blocks < 1 || window < 0 || splits < 0 ||
      !(scale > 0 && std::isfinite(scale)) || !(softcap >= 0 && std::isfinite(softcap)) || kernel < 0 || kernel > 3 ||
      (fp8 && !(std::isfinite(fp8->k_scale) && fp8->k_scale > 0 && std::isfinite(fp8->v_scale) && fp8->v_scale > 0)))
    fg::raise(FG_ERR_INVALID_ARGUMENT, "%s: bad arguments", fn);
  const fg_batch b = attention_batch(batch, num_blocks, block_size);
  if (b.num_tokens == 0) return;
  ops.paged_attention(&b, q, k_cache, v_cache, out, num_heads, num_kv_heads, head_dim, block_size, num_blocks, window,
                      scale, softcap, splits, kernel, fp8);
}

// fg_mla_attention(_fp8): fp8 null for the backend's own cache dtype.
void mla_attention_hook(const char *fn, int32_t backend, const fg_batch *batch, const float *q, const float *cache,
                        float *out, int32_t num_heads, int32_t latent, int32_t rope, int32_t block_size,
                        int32_t num_blocks, int32_t window, float scale, float softcap, int32_t splits,
                        const fg::HookKvFp8 *fp8) {
  const fg::OpHooks &ops = fg::backend_kind(backend, fn).ops;
  if (!q || !cache || !out || num_heads < 1 || latent < 1 || rope < 0 || block_size < 1 || num_blocks < 1 ||
      window < 0 || splits < 0 || !(scale > 0) || !(softcap >= 0) ||
      (fp8 && !(std::isfinite(fp8->k_scale) && fp8->k_scale > 0)))
    fg::raise(FG_ERR_INVALID_ARGUMENT, "%s: bad arguments", fn);
  const fg_batch b = attention_batch(batch, num_blocks, block_size);
  if (b.num_tokens == 0) return;
  ops.mla_attention(&b, q, cache, out, num_heads, latent, rope, block_size, num_blocks, window, scale, softcap, splits,
                    fp8);
}

}  // namespace

extern "C" fg_status fg_paged_attention(int32_t backend, const fg_batch *batch, const float *q,
                                        const float *k_cache, const float *v_cache, float *out,
                                        int32_t num_heads, int32_t num_kv_heads, int32_t head_dim,
                                        int32_t block_size, int32_t num_blocks, int32_t window,
                                        float scale, float softcap, int32_t splits, int32_t kernel) {
  return fg::guard(__func__, [&] {
    paged_attention_hook("fg_paged_attention", backend, batch, q, k_cache, v_cache, out, num_heads, num_kv_heads,
                         head_dim, block_size, num_blocks, window, scale, softcap, splits, kernel, nullptr);
  });
}

extern "C" fg_status fg_paged_attention_fp8(int32_t backend, const fg_batch *batch, const float *q,
                                            const float *k_cache, const float *v_cache, float *out,
                                            int32_t num_heads, int32_t num_kv_heads, int32_t head_dim,
                                            int32_t block_size, int32_t num_blocks, int32_t window,
                                            int32_t splits, float softcap, float k_scale, float v_scale) {
  return fg::guard(__func__, [&] {
    const fg::HookKvFp8 fp8 = {k_scale, v_scale};
    paged_attention_hook("fg_paged_attention_fp8", backend, batch, q, k_cache, v_cache, out, num_heads,
                         num_kv_heads, head_dim, block_size, num_blocks, window,
                         head_dim > 0 ? (float)(1.0 / std::sqrt((double)head_dim)) : 1.0f, softcap, splits, 0, &fp8);
  });
}

extern "C" fg_status fg_mla_attention(int32_t backend, const fg_batch *batch, const float *q, const float *cache,
                                      float *out, int32_t num_heads, int32_t latent, int32_t rope, int32_t block_size,
                                      int32_t num_blocks, int32_t window, float scale, float softcap, int32_t splits) {
  return fg::guard(__func__, [&] {
    mla_attention_hook("fg_mla_attention", backend, batch, q, cache, out, num_heads, latent, rope, block_size,
                       num_blocks, window, scale, softcap, splits, nullptr);
  });
}

extern "C" fg_status fg_mla_attention_fp8(int32_t backend, const fg_batch *batch, const float *q, const float *cache,
                                          float *out, int32_t num_heads, int32_t latent, int32_t rope,
                                          int32_t block_size, int32_t num_blocks, int32_t window, float scale,
                                          float softcap, int32_t splits, float kv_scale) {
  return fg::guard(__func__, [&] {
    const fg::HookKvFp8 fp8 = {kv_scale, kv_scale};
    mla_attention_hook("fg_mla_attention_fp8", backend, batch, q, cache, out, num_heads, latent, rope, block_size,
                       num_blocks, window, scale, softcap, splits, &fp8);
  });
}

extern "C" fg_status fg_sample_logits(int32_t backend, const fg_batch *batch, const float *logits,
                                      int32_t vocab, fg_step_output *out) {
  return fg::guard(__func__, [&] {
    const fg::OpHooks &ops = fg::backend_kind(backend, "fg_sample_logits").ops;
    if (!logits || vocab < 1) fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_sample_logits: bad arguments");
    fg::ModelSpec spec;
    spec.vocab_size = vocab;
    spec.max_position_embeddings = INT32_MAX;
    fg::validate_batch(spec, INT32_MAX, 1 << 30, batch);
    fg::validate_output(batch, out);
    if (batch->penalty_slots)
      fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_sample_logits: penalty slots live in an engine (use fg_step)");
    ops.sample(batch, logits, vocab, out);
  });
}

extern "C" fg_status fg_run_op(int32_t backend, int32_t op, const int32_t *dims, int32_t num_dims,
                               const float *params, int32_t num_params, void *const *bufs, int32_t num_bufs) {
  return fg::guard(__func__, [&] {
    const fg::OpHooks &ops = fg::backend_kind(backend, "fg_run_op").ops;
    fg::check_op(op, dims, num_dims, params, num_params, bufs, num_bufs);
    ops.run_op(op, dims, params, bufs);
  });
}

extern "C" fg_status fg_dequantize(int32_t dtype, const void *q, int64_t rows, int64_t cols,
                                   const float *scales, uint64_t num_scales, int64_t block_rows,
                                   int64_t block_cols, float *out) {
  return fg::guard(__func__, [&] {
    if (dtype != FG_F8_E4M3) fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_dequantize: dtype %d is not FG_F8_E4M3", dtype);
    if (!q || !out || rows < 1 || cols < 1) fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_dequantize: bad arguments");
    fg::WeightScales s;
    s.data = scales, s.count = num_scales, s.block_rows = block_rows, s.block_cols = block_cols;
    s = fg::check_scales("fg_dequantize", rows, cols, s);
    fg::dequantize_e4m3((const uint8_t *)q, rows, cols, s, out);
  });
}

extern "C" fg_status fg_quantize_fp8(int32_t dtype, const void *w, int64_t rows, int64_t cols,
                                     uint8_t *q, float *scales) {
  return fg::guard(__func__, [&] {
    if (!w || !q || !scales || rows < 1 || cols < 1)
      fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_quantize_fp8: bad arguments");
    fg::quantize_e4m3_rows("fg_quantize_fp8", dtype, w, rows, cols, q, scales);
  });
}
