// fg_engine's FP8 paths: quantized weights (fastgen.h fg_engine_load_quantized_tensor, and the
// spec's "quantization": "fp8", which quantizes at load) and the FP8 KV cache option. What each
// backend keeps of them is its own (backend_cpu.cpp: the reference, dequantized exactly;
// backend_cuda.cpp: FP8 kept FP8 on the device).
#include <cmath>
#include <vector>

#include "core/engine.h"
#include "core/error.h"

void fg_engine::load_quantized_tensor(const char *name, int32_t dtype, const int64_t *shape,
                                      int32_t ndim, const void *data, uint64_t nbytes,
                                      fg::WeightScales scales, float input_scale) {
  std::lock_guard<std::mutex> lk(mu_);
  if (finalized_)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "load_quantized_tensor '%s': engine is already finalized", name ? name : "");
  load_quantized(name, dtype, shape, ndim, data, nbytes, scales, input_scale);
}

void fg_engine::load_quantized(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                               const void *data, uint64_t nbytes, fg::WeightScales scales,
                               float input_scale) {
  if (!(std::isfinite(input_scale) && input_scale >= 0))
    fg::raise(FG_ERR_INVALID_ARGUMENT, "load_quantized_tensor '%s': input_scale must be finite and >= 0 (0 = dynamic), got %g",
              name ? name : "", (double)input_scale);
  // Everything is checked before a GPU is asked about or anything is stored.
  const fg::TensorEntry &t = weights_.check_load(name, dtype, shape, ndim, data, nbytes);
  backend_->check_fp8("an FP8 checkpoint");
  // The store keeps the weight dequantized to fp32 where the backend computes on host copies.
  // input_scale quantizes activations, which the reference never does (weight-only semantics).
  scales = weights_.load_quantized(name, dtype, shape, ndim, data, nbytes, scales);
  backend_->load_fp8(t, (const uint8_t *)data, shape[0], shape[1], scales, input_scale);
}

void fg_engine::quantize_and_load(const char *name, int32_t dtype, const int64_t *shape,
                                  int32_t ndim, const void *data, uint64_t nbytes) {
  const fg::TensorEntry &t = weights_.check_load(name, dtype, shape, ndim, data, nbytes);
  const int64_t rows = t.shape[0], cols = t.shape[1];  // FP8-capable kinds are matrices
  std::vector<uint8_t> q((size_t)(rows * cols));
  std::vector<float> scales((size_t)rows);
  fg::quantize_e4m3_rows(name, dtype, data, rows, cols, q.data(), scales.data());
  fg::WeightScales s;
  s.data = scales.data(), s.count = scales.size(), s.block_rows = 1, s.block_cols = 0;
  load_quantized(name, FG_F8_E4M3, shape, ndim, q.data(), q.size(), s, /*input_scale=*/0);
}

void fg_engine::check_kv_dtype(const fg_kv_config *kv) const {
  if (!kv || kv->kv_dtype == 0) return;
  if (kv->kv_dtype != FG_F8_E4M3)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "kv config: kv_dtype must be 0 (auto) or %d (FG_F8_E4M3), got %d",
              (int)FG_F8_E4M3, kv->kv_dtype);
  for (const float *scales : {kv->k_scales, kv->v_scales}) {
    if (!scales) continue;
    for (int64_t l = 0; l < spec_.num_layers; l++)
      if (!(std::isfinite(scales[l]) && scales[l] > 0))
        fg::raise(FG_ERR_INVALID_ARGUMENT, "kv config: layer %lld's %s scale is %g (must be finite and > 0)",
                  (long long)l, scales == kv->k_scales ? "K" : "V", (double)scales[l]);
  }
}
