// fg_engine's FP8 paths: quantized weights (fastgen.h fg_engine_load_quantized_tensor, and the
// spec's "quantization": "fp8", which quantizes at load) and the FP8 KV cache option.
//
// The CPU backend is the reference: its weight store dequantizes exactly (core/fp8.h) and its KV
// cache keeps fp32 values rounded through E4M3. The CUDA backend keeps FP8 projections FP8 on the
// device (cuda/weight.cuh; its GEMMs: cuda/fp8_gemm.cuh) with their scales, the block grid
// expanded to one row of K-segment scales per output row (exact). It dequantizes to bf16 instead
// where it cannot keep them: tensor_parallel > 1 (shards of FP8 weights are not cut), K not a
// multiple of 16, scale blocks along K that are not multiples of 16 columns, and parts of a
// projection whose first part arrived in bf16. A part that arrives unquantized for a projection
// already FP8 (a fused q/k/v or gate/up with mixed parts) is quantized per channel, as
// --quantization fp8 does. An FP8 KV cache is refused on CUDA (not yet implemented); FP8 on a GPU
// without FP8 tensor cores is refused first.
#include <cmath>
#include <vector>

#include "core/engine.h"
#include "core/error.h"

namespace {

// FP8 tensor cores: Ada (8.9) and Hopper (9.0) onwards.
const int32_t kFp8MinCapability = 89;

}  // namespace

void fg_engine::load_quantized_tensor(const char *name, int32_t dtype, const int64_t *shape,
                                      int32_t ndim, const void *data, uint64_t nbytes,
                                      fg::WeightScales scales, float input_scale) {
  std::lock_guard<std::mutex> lk(mu_);
  if (finalized())
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
  weights_.check_load(name, dtype, shape, ndim, data, nbytes);
  if (backend_ == FG_BACKEND_CUDA) require_fp8_gpu("an FP8 checkpoint");
  // CPU: the store keeps the weight dequantized to fp32. input_scale quantizes activations,
  // which the reference never does (weight-only semantics); the device's W8A8 GEMMs read it.
  scales = weights_.load_quantized(name, dtype, shape, ndim, data, nbytes, scales);
  if (backend_ != FG_BACKEND_CUDA) return;
  const fg::TensorEntry &t = *weights_.find(name);
  const int64_t rows = shape[0], cols = shape[1];
  const int32_t held = cuda_weight_dtype(t);
  const bool keeps = spec_.tensor_parallel == 1 && fg::fp8_capable(t.kind) && cols % 16 == 0 &&
                     (scales.block_cols >= cols || scales.block_cols % 16 == 0);
  if (keeps && held != kCudaBf16) return cuda_load_fp8(t, (const uint8_t *)data, rows, cols, scales, input_scale);
  // Dequantized: to bf16 (load.cu rounds the fp32), or per channel again for an FP8 projection.
  std::vector<float> w((size_t)(rows * cols));
  fg::dequantize_e4m3((const uint8_t *)data, rows, cols, scales, w.data());
  if (held != kCudaFp8) return cuda_load(name, FG_F32, w.data(), w.size() * sizeof(float));
  std::vector<uint8_t> q(w.size());
  std::vector<float> rs((size_t)rows);
  fg::quantize_e4m3_rows(name, FG_F32, w.data(), rows, cols, q.data(), rs.data());
  fg::WeightScales per_row;
  per_row.data = rs.data(), per_row.count = rs.size(), per_row.block_rows = 1, per_row.block_cols = cols;
  cuda_load_fp8(t, q.data(), rows, cols, per_row, input_scale);
}

void fg_engine::cuda_load_fp8(const fg::TensorEntry &t, const uint8_t *q, int64_t rows, int64_t cols,
                              const fg::WeightScales &s, float input_scale) {
  // The block grid as the device keeps it: per output row its K-segment scales (weight.cuh).
  const int64_t kblock = s.block_cols, nkb = (cols + kblock - 1) / kblock;
  std::vector<float> row_scales((size_t)(rows * nkb));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < nkb; c++) row_scales[(size_t)(r * nkb + c)] = s.data[(r / s.block_rows) * nkb + c];
  char err[512] = "";
  const int rc = fgcu_engine_load_fp8(cuda_, t.layer, t.expert, t.kind, q, rows, cols, row_scales.data(), kblock,
                                      input_scale, err);
  if (rc != 0) fg::raise((fg_status)rc, "load_quantized_tensor '%s': %s", t.name.c_str(), err);
}

int32_t fg_engine::cuda_weight_dtype(const fg::TensorEntry &t) const {
  return fgcu_engine_weight_dtype(cuda_, t.layer, t.expert, t.kind);
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

void fg_engine::require_fp8_gpu(const char *what) {
  if (fp8_gpu_checked_) return;
  for (int32_t d = 0; d < (int32_t)spec_.tensor_parallel; d++) {
    char name[256] = "", err[512] = "";
    int32_t major = 0, minor = 0;
    const int rc = fgcu_device_props(d, name, &major, &minor, err);
    if (rc != 0) fg::raise((fg_status)rc, "%s", err);
    if (major * 10 + minor < kFp8MinCapability)
      fg::raise(FG_ERR_UNSUPPORTED,
                "%s: FP8 needs a GPU with FP8 tensor cores (compute capability 8.9 or newer: L4, L40S, H100, "
                "H200, B200); CUDA device %d is %s (compute capability %d.%d). On this GPU serve a bf16 "
                "checkpoint without --quantization and with --kv-cache-dtype auto, or run FP8 on the CPU "
                "backend (--backend cpu)",
                what, d, name, major, minor);
  }
  fp8_gpu_checked_ = true;
}

void fg_engine::check_kv_dtype(const fg_kv_config *kv) {
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
  if (backend_ == FG_BACKEND_CUDA) {
    require_fp8_gpu("--kv-cache-dtype fp8");
    fg::raise(FG_ERR_UNSUPPORTED,
              "kv config: an FP8 KV cache (--kv-cache-dtype fp8) is not yet implemented on CUDA; use "
              "--kv-cache-dtype auto (bf16) there, or the CPU backend");
  }
}

std::vector<fg::cpu::KvLayer> fg_engine::cpu_kv_layers(const fg_kv_config *kv) const {
  const bool fp8 = kv && kv->kv_dtype == FG_F8_E4M3;
  std::vector<fg::cpu::KvLayer> layers;
  for (int64_t l = 0; l < spec_.num_layers; l++) {
    fg::cpu::KvLayer layer{kv_->k(l), kv_->v(l)};
    layer.fp8 = fp8;
    if (fp8 && kv->k_scales) layer.k_scale = kv->k_scales[l];
    if (fp8 && kv->v_scales) layer.v_scale = kv->v_scales[l];
    layers.push_back(layer);
  }
  return layers;
}
