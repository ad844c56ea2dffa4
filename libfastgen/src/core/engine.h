// The engine behind the opaque fg_engine handle: spec, weights, KV pool. The CPU backend lives
// here; the CUDA backend (engine_cuda.cpp) keeps weights and KV on the device behind cuda_.
#pragma once
#include <memory>
#include <mutex>
#include <vector>

#include "core/kv_pool.h"
#include "core/pass_thread.h"
#include "core/penalty_slots.h"
#include "core/rope_freq.h"
#include "core/spec.h"
#include "core/weights.h"
#include "cpu/forward.h"
#include "cuda/cuda_api.h"
#include "fastgen.h"

struct fg_engine {
  // Parses the spec; throws fg::Error (INVALID_ARGUMENT / UNSUPPORTED).
  fg_engine(const char *spec_json, int32_t backend);
  ~fg_engine();
  fg_engine(const fg_engine &) = delete;
  fg_engine &operator=(const fg_engine &) = delete;

  void load_tensor(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                   const void *data, uint64_t nbytes);
  // fastgen.h fg_engine_load_quantized_tensor (engine_quant.cpp).
  void load_quantized_tensor(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                             const void *data, uint64_t nbytes, fg::WeightScales scales,
                             float input_scale);
  // Checks every tensor is loaded, then allocates the KV pool.
  void finalize(const fg_kv_config *kv);
  fg_engine_info info() const;
  // One forward pass + sampling (step.cpp): fg_step, or its halves fg_step_launch and
  // fg_step_finish (fastgen.h). The batch is validated before anything changes.
  void step(const fg_batch *batch, fg_step_output *out);
  void step_launch(const fg_batch *batch);
  void step_finish(const fg_step_late *late, fg_step_output *out);
  // fg_engine_destroy: ends a pass in flight (waits for it, drops its results); true if one was.
  bool drop_pass();
  void debug_fail_next_steps(int32_t count);
  void debug_fail_status(int32_t status);

 private:
  // engine_cuda.cpp: the same life cycle on the CUDA backend.
  void cuda_create();
  void cuda_load(const char *name, int32_t dtype, const void *data, uint64_t nbytes);
  void cuda_finalize(const fg_kv_config *kv);
  // The two halves of a step on the device: launch queues pass_'s forward (or nothing, when
  // finish is to run the whole step); finish samples with the late masks and waits.
  void cuda_launch(bool overlap);
  void cuda_finish(const fg_step_late *late, fg_step_output *out);
  // The pass between launch and finish, with mu_ held (step.cpp).
  void launch_locked(const fg_batch *b, bool overlap, const char *fn);
  void finish_locked(const fg_step_late *late, fg_step_output *out);
  void cpu_forward();  // pass_'s forward pass into pass_.logits, on whichever thread calls it
  bool finalized() const { return kv_ || cuda_finalized_; }
  // engine_quant.cpp: FP8 weights and KV cache, with mu_ held.
  void load_quantized(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                      const void *data, uint64_t nbytes, fg::WeightScales scales, float input_scale);
  // The spec's "quantization": "fp8": an F32/F16/BF16 weight quantized per output channel first.
  void quantize_and_load(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                         const void *data, uint64_t nbytes);
  // An FP8 weight kept FP8 on the device, its scales (as check_scales resolved them) expanded per
  // output row (cuda/weight.cuh).
  void cuda_load_fp8(const fg::TensorEntry &t, const uint8_t *q, int64_t rows, int64_t cols,
                     const fg::WeightScales &s, float input_scale);
  // The dtype the device holds t's projection in so far (cuda_api.h fgcu_engine_weight_dtype).
  static constexpr int32_t kCudaBf16 = 1, kCudaFp8 = 2;
  int32_t cuda_weight_dtype(const fg::TensorEntry &t) const;
  // Throws FG_ERR_UNSUPPORTED naming the GPU when a CUDA rank's device is below sm_89.
  void require_fp8_gpu(const char *what);
  // Checks kv_dtype and its scales; returns the layers' KV views for the CPU pool.
  void check_kv_dtype(const fg_kv_config *kv);
  std::vector<fg::cpu::KvLayer> cpu_kv_layers(const fg_kv_config *kv) const;

  fg::ModelSpec spec_;
  fg::WeightStore weights_;
  std::unique_ptr<fg::KvPool> kv_;  // set by finalize()
  fg::ModelWeights view_;           // pointers into weights_, set by finalize()
  std::vector<fg::cpu::KvLayer> kv_layers_;
  fg::RopeFreqs rope_;              // RoPE frequencies after scaling (core/rope_freq.h)
  int32_t backend_ = FG_BACKEND_CPU;
  fgcu_engine *cuda_ = nullptr;      // CUDA backend: its ranks (device weights, KV pools)
  fgcu_info cuda_info_{};
  bool cuda_finalized_ = false;
  bool fp8_gpu_checked_ = false;
  int32_t fail_steps_ = 0;
  fg_status fail_status_ = FG_ERR_INTERNAL;
  mutable std::mutex mu_;           // one call at a time per engine
  // fg_step_launch .. fg_step_finish: at most one pass in flight.
  struct Pass {
    bool in_flight = false;
    bool started = false;            // its forward runs (pass thread, CUDA stream); else finish runs it
    fg_batch batch{};                // the launched struct; its arrays are the caller's
    std::vector<int32_t> token_seq;  // CPU: [num_tokens] sequence of each token
    std::vector<float> logits;       // CPU: [num_rows, vocab] of the sample rows' tokens
    // CUDA with penalty slots: every sequence's whole list, which batch's penalty CSR points at
    std::vector<int32_t> penalty_indptr, penalty_ids, penalty_prompt_lens;
  };
  fg::PenaltySlots penalties_;       // fg_batch penalty_slots: lists kept between passes
  Pass pass_;
  fg::PassThread pass_thread_;       // last: stopped before the state its job reads goes away
};
