// The engine behind the opaque fg_engine handle: the ABI-level jobs (locking, validation, the
// pass life cycle, penalty slots, failure injection) over spec, tensor table and one Backend
// (core/backend.h), which holds the weights and KV cache and runs the passes.
#pragma once
#include <memory>
#include <mutex>

#include "core/backend.h"
#include "core/penalty_slots.h"
#include "core/rope_freq.h"
#include "core/spec.h"
#include "core/weights.h"
#include "fastgen.h"

struct fg_engine {
  // Parses the spec, then creates the backend; throws fg::Error (INVALID_ARGUMENT / UNSUPPORTED).
  fg_engine(const char *spec_json, int32_t backend);
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
  // The pass between launch and finish, with mu_ held (step.cpp).
  void launch_locked(const fg_batch *b, bool overlap, const char *fn);
  void finish_locked(const fg_step_late *late, fg_step_output *out);
  // engine_quant.cpp: FP8 weights and KV cache, with mu_ held.
  void load_quantized(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                      const void *data, uint64_t nbytes, fg::WeightScales scales, float input_scale);
  // The spec's "quantization": "fp8": an F32/F16/BF16 weight quantized per output channel first.
  void quantize_and_load(const char *name, int32_t dtype, const int64_t *shape, int32_t ndim,
                         const void *data, uint64_t nbytes);
  // Checks kv_dtype and its scales (the backend refuses what it cannot hold at finalize).
  void check_kv_dtype(const fg_kv_config *kv) const;

  fg::ModelSpec spec_;                // parsed first: a bad spec is reported before a bad backend
  const int32_t backend_id_;          // fg_backend, as asked
  const fg::BackendKind &kind_;
  fg::WeightStore weights_;
  fg::RopeFreqs rope_;                // RoPE frequencies after scaling (core/rope_freq.h)
  fg::PenaltySlots penalties_;        // fg_batch penalty_slots: lists kept between passes
  bool finalized_ = false;
  int32_t fail_steps_ = 0;
  fg_status fail_status_ = FG_ERR_INTERNAL;
  mutable std::mutex mu_;             // one call at a time per engine
  // fg_step_launch .. fg_step_finish: at most one pass in flight.
  struct Pass {
    bool in_flight = false;
    fg_batch batch{};  // the launched struct; its arrays are the caller's
  };
  Pass pass_;
  std::unique_ptr<fg::Backend> backend_;  // last: gone (its pass waited for) before what it reads
};
