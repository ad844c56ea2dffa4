// The CUDA backend: weights and KV pools on the device ranks of cuda/cuda_api.h's fgcu_engine
// (tensor_parallel of them), passes queued on its stream. The engine validates names, shapes and
// batches exactly as for the CPU; model features the device forward pass does not run yet are
// refused at create with FG_ERR_UNSUPPORTED (core/cuda_model.h).
//
// FP8: projections are kept FP8 on the device (cuda/weight.cuh; its GEMMs: cuda/fp8_gemm.cuh)
// with their scales, the block grid expanded to one row of K-segment scales per output row
// (exact). They are dequantized to bf16 instead where that cannot be: tensor_parallel > 1
// (shards of FP8 weights are not cut), K not a multiple of 16, scale blocks along K that are not
// multiples of 16 columns, and parts of a projection whose first part arrived in bf16. A part
// that arrives unquantized for a projection already FP8 (a fused q/k/v or gate/up with mixed
// parts) is quantized per channel, as --quantization fp8 does. An FP8 KV cache
// (--kv-cache-dtype fp8) keeps K/V as E4M3 bytes with the per-layer scales (cuda/kv_fp8.cuh):
// half the bytes a block, so twice the blocks in the same memory. FP8 of either kind on a GPU
// without FP8 tensor cores is refused, naming the GPU.
#include <vector>

#include "core/backend.h"
#include "core/batch.h"
#include "core/cuda_model.h"
#include "core/error.h"

namespace fg {
namespace {

// FP8 tensor cores: Ada (8.9) and Hopper (9.0) onwards.
const int32_t kFp8MinCapability = 89;
// The dtype the device holds a projection in so far (fgcu_engine_weight_dtype).
constexpr int32_t kHeldBf16 = 1, kHeldFp8 = 2;

// fgcu calls return 0 or an fg_status with a message in err.
void check(int rc, const char *err) {
  if (rc != 0) raise((fg_status)rc, "%s", err);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const EngineState &s) : s_(s) {
    check_cuda_runs(s.spec);
    if (s.spec.quantize_fp8) check_fp8("--quantization fp8");
    CudaLayerFlags flags;
    const fgcu_model m = cuda_model(s.spec, s.rope, &flags);
    char err[512] = "";
    check(fgcu_engine_create(&m, (int32_t)s.spec.tensor_parallel, (int32_t)s.spec.collective_timeout_ms, &g_, err),
          err);
  }
  ~CudaBackend() override { fgcu_engine_destroy(g_); }

  bool wants_fp8(const TensorEntry &t) const override { return held(t) == kHeldFp8; }

  void load(const TensorEntry &t, int32_t dtype, const void *data, uint64_t nbytes) override {
    const uint64_t numel = nbytes / (dtype == FG_F32 ? 4 : 2);
    char err[512] = "";
    check(fgcu_engine_load(g_, t.layer, t.expert, t.kind, dtype, data, numel, err), err);
  }

  // Throws FG_ERR_UNSUPPORTED naming the GPU when a rank's device is below sm_89.
  void check_fp8(const char *what) override {
    if (fp8_checked_) return;
    for (int32_t d = 0; d < (int32_t)s_.spec.tensor_parallel; d++) {
      char name[256] = "", err[512] = "";
      int32_t major = 0, minor = 0;
      check(fgcu_device_props(d, name, &major, &minor, err), err);
      if (major * 10 + minor < kFp8MinCapability)
        raise(FG_ERR_UNSUPPORTED,
              "%s: FP8 needs a GPU with FP8 tensor cores (compute capability 8.9 or newer: L4, L40S, H100, "
              "H200, B200); CUDA device %d is %s (compute capability %d.%d). On this GPU serve a bf16 "
              "checkpoint without --quantization and with --kv-cache-dtype auto, or run FP8 on the CPU "
              "backend (--backend cpu)",
              what, d, name, major, minor);
    }
    fp8_checked_ = true;
  }

  void load_fp8(const TensorEntry &t, const uint8_t *q, int64_t rows, int64_t cols, const WeightScales &scales,
                float input_scale) override {
    const int32_t was = held(t);
    const bool keeps = s_.spec.tensor_parallel == 1 && fp8_capable(t.kind) && cols % 16 == 0 &&
                       (scales.block_cols >= cols || scales.block_cols % 16 == 0);
    if (keeps && was != kHeldBf16) return load_fp8_kept(t, q, rows, cols, scales, input_scale);
    // Dequantized: to bf16 (load.cu rounds the fp32), or per channel again for an FP8 projection.
    std::vector<float> w((size_t)(rows * cols));
    dequantize_e4m3(q, rows, cols, scales, w.data());
    if (was != kHeldFp8) return load(t, FG_F32, w.data(), w.size() * sizeof(float));
    std::vector<uint8_t> q8(w.size());
    std::vector<float> rs((size_t)rows);
    quantize_e4m3_rows(t.name.c_str(), FG_F32, w.data(), rows, cols, q8.data(), rs.data());
    WeightScales per_row;
    per_row.data = rs.data(), per_row.count = rs.size(), per_row.block_rows = 1, per_row.block_cols = cols;
    load_fp8_kept(t, q8.data(), rows, cols, per_row, input_scale);
  }

  void finalize(const fg_kv_config *kv) override {
    if (kv && kv->kv_dtype == FG_F8_E4M3) check_fp8("--kv-cache-dtype fp8");
    const fg_kv_config dflt{};
    if (!kv) kv = &dflt;
    if (kv->block_size < 0 || kv->block_size > 65536)
      raise(FG_ERR_INVALID_ARGUMENT, "kv config: block_size must be in [0, 65536], got %d", kv->block_size);
    if (kv->num_blocks < 0) raise(FG_ERR_INVALID_ARGUMENT, "kv config: num_blocks must be >= 0, got %d", kv->num_blocks);
    if (!(kv->memory_fraction >= 0 && kv->memory_fraction <= 1))
      raise(FG_ERR_INVALID_ARGUMENT, "kv config: memory_fraction must be in [0, 1], got %g", (double)kv->memory_fraction);
    char err[512] = "";
    check(fgcu_engine_finalize(g_, kv->block_size, kv->num_blocks, kv->memory_fraction, kv->kv_dtype, kv->k_scales,
                               kv->v_scales, &info_, err),
          err);
  }

  KvShape kv_shape() const override {
    KvShape k;
    k.num_blocks = info_.num_blocks, k.block_size = info_.block_size;
    return k;
  }

  void info(fg_engine_info &i) const override {
    i.weight_bytes = info_.weight_bytes;
    i.kv_bytes = info_.kv_bytes;
  }

  void launch(const fg_batch &b, bool overlap) override {
    batch_ = b;
    started_ = false;
    if (b.penalty_slots) {  // the device sampler reads whole lists: one CSR, uploaded with the pass
      s_.penalties.flatten(&b, penalty_indptr_, penalty_ids_, penalty_prompt_lens_);
      batch_.penalty_indptr = penalty_indptr_.data();
      batch_.penalty_ids = penalty_ids_.data();
      batch_.penalty_prompt_lens = penalty_prompt_lens_.data();
      batch_.penalty_slots = batch_.penalty_slot_keep = nullptr;
    }
    // Tensor-parallel ranks take one job at a time (tp.cu): their steps run whole, from finish.
    if (!overlap || s_.spec.tensor_parallel > 1) return;
    char err[512] = "";
    check(fgcu_engine_launch(g_, &batch_, err), err);
    started_ = true;
  }

  // Launched: the late masks go into the rows, then sampling and the wait. Else the whole step.
  void finish(const fg_step_late *late, fg_step_output *out) override {
    char err[512] = "";
    if (!started_) {
      const fg_batch b = with_late(batch_, late);
      check(fgcu_engine_step(g_, &b, out, err), err);
      return;
    }
    started_ = false;
    const bool has = late && late->row_masks;
    check(fgcu_engine_finish(g_, has ? late->row_masks : nullptr, has ? late->masks : nullptr,
                             has ? late->num_masks : 0, out, err),
          err);
  }

  void drop() noexcept override {
    if (!started_) return;
    started_ = false;
    char err[512] = "";
    fgcu_engine_finish(g_, nullptr, nullptr, 0, nullptr, err);  // only waits
  }

 private:
  int32_t held(const TensorEntry &t) const { return fgcu_engine_weight_dtype(g_, t.layer, t.expert, t.kind); }

  // An FP8 weight kept FP8: the scale grid as the device keeps it, per output row its K-segment
  // scales (cuda/weight.cuh).
  void load_fp8_kept(const TensorEntry &t, const uint8_t *q, int64_t rows, int64_t cols, const WeightScales &s,
                     float input_scale) {
    const int64_t kblock = s.block_cols, nkb = (cols + kblock - 1) / kblock;
    std::vector<float> row_scales((size_t)(rows * nkb));
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < nkb; c++) row_scales[(size_t)(r * nkb + c)] = s.data[(r / s.block_rows) * nkb + c];
    char err[512] = "";
    const int rc = fgcu_engine_load_fp8(g_, t.layer, t.expert, t.kind, q, rows, cols, row_scales.data(), kblock,
                                        input_scale, err);
    if (rc != 0) raise((fg_status)rc, "load_quantized_tensor '%s': %s", t.name.c_str(), err);
  }

  const EngineState s_;
  fgcu_engine *g_ = nullptr;  // the ranks: device weights, KV pools
  fgcu_info info_{};          // set by finalize
  bool fp8_checked_ = false;
  fg_batch batch_{};          // the pass's struct (penalty slots flattened into its CSR)
  bool started_ = false;      // its forward is queued on the device
  // With penalty slots: every sequence's whole list, which batch_'s penalty CSR points at.
  std::vector<int32_t> penalty_indptr_, penalty_ids_, penalty_prompt_lens_;
};

}  // namespace

std::unique_ptr<Backend> create_cuda_backend(const EngineState &state) {
  return std::unique_ptr<Backend>(new CudaBackend(state));
}

}  // namespace fg
