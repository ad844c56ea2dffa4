// The backends of an engine behind one interface, as ggml's are. fg_engine (engine.h) keeps the
// ABI-level jobs: locking, validation (names, shapes, batches, outputs), the pass life cycle,
// penalty slots, failure injection. A Backend does the rest: where weights and the KV cache
// live, and how a pass runs. CPU (backend_cpu.cpp) is the reference; CUDA (backend_cuda.cpp)
// drives cuda/cuda_api.h. A new backend is one implementation and one row of backend.cpp's
// registry, the only place that names the fg_backend values.
//
// Life of an engine:  create ─ load* ─ finalize ─ (launch ─ finish | drop)* ─ destroy
#pragma once
#include <cstdint>
#include <memory>

#include "core/fp8.h"
#include "core/penalty_slots.h"
#include "core/rope_freq.h"
#include "core/spec.h"
#include "core/weights.h"
#include "fastgen.h"

namespace fg {

// What an engine owns and its backend reads; it outlives the backend.
struct EngineState {
  const ModelSpec &spec;
  const RopeFreqs &rope;
  const WeightStore &weights;    // the tensor table; fp32 copies where the kind keeps them
  const PenaltySlots &penalties; // the slots as applied to the pass being run
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Loading. The engine checked every tensor against the table (and stored it, where the
  // backend kind keeps host weights) before calling these.
  // True when t must be loaded FP8: an earlier part of its projection came FP8.
  virtual bool wants_fp8(const TensorEntry &t) const { return false; }
  virtual void load(const TensorEntry &t, int32_t dtype, const void *data, uint64_t nbytes) {}
  // Before an FP8 weight is stored: refuses (FG_ERR_UNSUPPORTED) where FP8 cannot run; `what`
  // names the request in the message ("an FP8 checkpoint").
  virtual void check_fp8(const char *what) {}
  // An FP8 weight q [rows, cols] with its scales as core/fp8.h check_scales resolved them.
  virtual void load_fp8(const TensorEntry &t, const uint8_t *q, int64_t rows, int64_t cols,
                        const WeightScales &scales, float input_scale) {}

  // Allocates the KV cache; kv (may be null) passed the engine's kv_dtype checks.
  virtual void finalize(const fg_kv_config *kv) = 0;
  // The KV cache's blocks (both 0 before finalize): what batches are validated against.
  struct KvShape {
    int32_t num_blocks = 0, block_size = 0;
  };
  virtual KvShape kv_shape() const = 0;
  // Fills weight_bytes, kv_bytes and num_threads (fg_engine_info; the engine fills the rest).
  virtual void info(fg_engine_info &info) const = 0;

  // One pass. launch: b is validated, has tokens, and its penalty slots are applied; its arrays
  // stay the caller's until finish. overlap: start the forward now (else finish runs it all).
  virtual void launch(const fg_batch &b, bool overlap) = 0;
  // Samples or scores the rows into out (validated) with late's masks, once the forward is done.
  virtual void finish(const fg_step_late *late, fg_step_output *out) = 0;
  // Waits for the pass in flight and drops its results; throws nothing.
  virtual void drop() noexcept = 0;
};

// An attention hook's FP8 KV cache (fastgen.h fg_paged_attention_fp8, fg_mla_attention_fp8):
// the cache arrays hold values the backend stores as its FP8 cache does, e4m3(x / scale), and
// reads back times the scale (MLA rows: k). Null: the backend's own cache dtype.
struct HookKvFp8 {
  float k_scale, v_scale;
};

// One stage of fg_step on host buffers (test_hooks.cpp; fastgen.h fg_paged_attention,
// fg_sample_logits, fg_run_op): arguments validated there.
struct OpHooks {
  // Scores scale * q.k, capped at softcap when > 0; kernel: the CUDA kernel of prompt-chunk tiles
  // (fastgen.h fg_paged_attention; the CPU ignores it); fp8: an FP8 KV cache (null: none).
  void (*paged_attention)(const fg_batch *b, const float *q, const float *k_cache,
                          const float *v_cache, float *out, int32_t num_heads, int32_t num_kv_heads,
                          int32_t head_dim, int32_t block_size, int32_t num_blocks, int32_t window,
                          float scale, float softcap, int32_t splits, int32_t kernel, const HookKvFp8 *fp8);
  // MLA's attention over the latent cache: one shared [latent + rope] row per position is the key
  // of every head and (its first latent values) the value.
  void (*mla_attention)(const fg_batch *b, const float *q, const float *cache, float *out, int32_t num_heads,
                        int32_t latent, int32_t rope, int32_t block_size, int32_t num_blocks, int32_t window,
                        float scale, float softcap, int32_t splits, const HookKvFp8 *fp8);
  void (*sample)(const fg_batch *b, const float *logits, int32_t vocab, fg_step_output *out);
  // One op of core/op_hooks.h: dims, params and bufs in that op's order.
  void (*run_op)(int32_t op, const int32_t *dims, const float *params, void *const *bufs);
};

// A backend the library was asked for by its fg_backend value.
struct BackendKind {
  bool host_weights;  // the weight store keeps fp32 copies of the weights (the CPU computes on them)
  std::unique_ptr<Backend> (*create)(const EngineState &state);  // throws, as fg_engine_create
  const OpHooks &ops;
};

// Throws FG_ERR_INVALID_ARGUMENT "<fn>: unknown backend N" for a value that names none.
const BackendKind &backend_kind(int32_t backend, const char *fn);

// The implementations (backend_cpu.cpp, backend_cuda.cpp, ops_cpu.cpp, ops_cuda.cpp).
std::unique_ptr<Backend> create_cpu_backend(const EngineState &state);
std::unique_ptr<Backend> create_cuda_backend(const EngineState &state);
extern const OpHooks kCpuOps, kCudaOps;

}  // namespace fg
