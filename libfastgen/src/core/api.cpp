// The C ABI (fastgen.h). Every export clears fg_last_error(), runs inside fg::guard(), and turns
// any C++ exception into a status plus message: nothing C++ crosses the boundary.
#include <algorithm>
#include <cstddef>
#include <new>

#include "core/engine.h"
#include "core/error.h"
#include "core/guard.h"
#include "core/status.h"
#include "cpu/gemm.h"
#include "cpu/moe.h"
#include "cpu/thread_pool.h"

// The struct layouts bindings rely on are listed and checked in core/abi_layout.cpp.

namespace {

void need_engine(const fg_engine *e, const char *fn) {
  if (!e) fg::raise(FG_ERR_INVALID_ARGUMENT, "%s: engine is null", fn);
}

}  // namespace

extern "C" {

const char *fg_version(void) {
#ifdef FG_WITH_CUDA
  return "0.1.0 (cpu, cuda)";
#else
  return "0.1.0 (cpu)";
#endif
}

int32_t fg_abi_version(void) { return FG_ABI_VERSION; }

fg_status fg_set_num_threads(int32_t n) {
  return fg::guard(__func__, [&] {
    if (n < 0 || n > 4096) fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_set_num_threads: n must be in [0, 4096], got %d", n);
    fg::cpu::set_num_threads(n);
  });
}

fg_status fg_engine_create(const char *spec_json, int32_t backend, fg_engine **out) {
  return fg::guard(__func__, [&] {
    if (!out) fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_engine_create: out is null");
    *out = nullptr;
    *out = new fg_engine(spec_json, backend);
  });
}

fg_status fg_engine_destroy(fg_engine *engine) {
  return fg::guard(__func__, [&] {
    const bool dropped = engine && engine->drop_pass();
    delete engine;
    if (dropped)
      fg::raise(FG_ERR_INVALID_ARGUMENT,
                "fg_engine_destroy: a pass was in flight (fg_step_launch without fg_step_finish); "
                "it was waited for and dropped, and the engine is destroyed");
  });
}

fg_status fg_engine_load_tensor(fg_engine *engine, const char *name, int32_t dtype,
                                const int64_t *shape, int32_t ndim, const void *data,
                                uint64_t nbytes) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    engine->load_tensor(name, dtype, shape, ndim, data, nbytes);
  });
}

fg_status fg_engine_load_quantized_tensor(fg_engine *engine, const char *name, int32_t dtype,
                                          const int64_t *shape, int32_t ndim, const void *data,
                                          uint64_t nbytes, const float *scales, uint64_t num_scales,
                                          int64_t block_rows, int64_t block_cols, float input_scale) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    fg::WeightScales s;
    s.data = scales, s.count = num_scales, s.block_rows = block_rows, s.block_cols = block_cols;
    engine->load_quantized_tensor(name, dtype, shape, ndim, data, nbytes, s, input_scale);
  });
}

fg_status fg_engine_finalize(fg_engine *engine, const fg_kv_config *kv) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    engine->finalize(kv);
  });
}

fg_status fg_engine_get_info(fg_engine *engine, fg_engine_info *out) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    if (!out) fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_engine_get_info: out is null");
    *out = engine->info();
  });
}

fg_status fg_step(fg_engine *engine, const fg_batch *batch, fg_step_output *out) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    engine->step(batch, out);
  });
}

fg_status fg_step_launch(fg_engine *engine, const fg_batch *batch) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    engine->step_launch(batch);
  });
}

fg_status fg_step_finish(fg_engine *engine, const fg_step_late *late, fg_step_output *out) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    engine->step_finish(late, out);
  });
}

fg_status fg_debug_fail_next_steps(fg_engine *engine, int32_t count) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    engine->debug_fail_next_steps(count);
  });
}

fg_status fg_debug_fail_status(fg_engine *engine, int32_t status) {
  return fg::guard(__func__, [&] {
    need_engine(engine, __func__);
    engine->debug_fail_status(status);
  });
}

fg_status fg_cpu_gemm(const float *x, const float *w, const float *bias, float *y, int32_t m,
                      int32_t n, int32_t k) {
  return fg::guard(__func__, [&] {
    if (!x || !w || !y || m < 0 || n < 0 || k < 0)
      fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_cpu_gemm: bad arguments");
    fg::cpu::gemm(x, w, bias, y, m, n, k);
  });
}

fg_status fg_cpu_moe_route(const float *router_logits, int32_t num_tokens, int32_t num_experts,
                           int32_t top_k, int32_t *expert_ids, float *weights,
                           int32_t *expert_offsets, int32_t *token_slots) {
  return fg::guard(__func__, [&] {
    if (num_tokens < 0 || num_experts < 1 || top_k < 1 || top_k > num_experts)
      fg::raise(FG_ERR_INVALID_ARGUMENT,
                "fg_cpu_moe_route: need num_tokens >= 0 and 1 <= top_k <= num_experts, got %d, %d, %d",
                num_tokens, top_k, num_experts);
    if ((num_tokens > 0 && (!router_logits || !expert_ids || !weights || !token_slots)) ||
        !expert_offsets)
      fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_cpu_moe_route: null buffer");
    // The ABI's routing is Mixtral's (renormalized); fg_step covers moe_renormalize false.
    const fg::cpu::MoeRouting r =
        fg::cpu::moe_route(router_logits, num_tokens, num_experts, top_k, /*renormalize=*/true);
    std::copy(r.expert_ids.begin(), r.expert_ids.end(), expert_ids);
    std::copy(r.weights.begin(), r.weights.end(), weights);
    std::copy(r.expert_offsets.begin(), r.expert_offsets.end(), expert_offsets);
    std::copy(r.token_slots.begin(), r.token_slots.end(), token_slots);
  });
}

}  // extern "C"
