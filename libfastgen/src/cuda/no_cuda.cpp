// Built instead of the .cu files when nvcc is absent (-Dcuda=off): every CUDA entry point
// answers "not built with CUDA".
#include <stdio.h>

#include "cuda/cuda_api.h"

namespace {
int unsupported(char *err) {
  snprintf(err, 512, "libfastgen was built without CUDA (nvcc not found at build time)");
  return FG_ERR_UNSUPPORTED;
}
}  // namespace

extern "C" int32_t fgcu_device_count(void) { return 0; }
extern "C" int fgcu_device_props(int32_t, char *, int32_t *, int32_t *, char *err) { return unsupported(err); }
extern "C" int fgcu_rmsnorm_host(const float *, const float *, float *, int32_t, int32_t, float,
                                 char *err) {
  return unsupported(err);
}
extern "C" int fgcu_gemm_host(const float *, const float *, const float *, float *, int32_t, int32_t,
                              int32_t, int32_t, int32_t, float *, char *err) {
  return unsupported(err);
}
extern "C" int fgcu_engine_create(const fgcu_model *, int32_t, int32_t, fgcu_engine **out, char *err) {
  *out = nullptr;
  return unsupported(err);
}
extern "C" void fgcu_engine_destroy(fgcu_engine *) {}
extern "C" int fgcu_engine_load(fgcu_engine *, int32_t, int32_t, int32_t, int32_t, const void *, uint64_t,
                               char *err) {
  return unsupported(err);
}
extern "C" int fgcu_engine_load_fp8(fgcu_engine *, int32_t, int32_t, int32_t, const uint8_t *, int64_t, int64_t,
                                    const float *, int64_t, float, char *err) {
  return unsupported(err);
}
extern "C" int32_t fgcu_engine_weight_dtype(fgcu_engine *, int32_t, int32_t, int32_t) { return -1; }
extern "C" int fgcu_engine_finalize(fgcu_engine *, int32_t, int32_t, float, int32_t, const float *, const float *,
                                   fgcu_info *, char *err) {
  return unsupported(err);
}
extern "C" int fgcu_engine_step(fgcu_engine *, const fg_batch *, fg_step_output *, char *err) {
  return unsupported(err);
}
extern "C" int fgcu_engine_launch(fgcu_engine *, const fg_batch *, char *err) { return unsupported(err); }
extern "C" int fgcu_engine_finish(fgcu_engine *, const int32_t *, const uint32_t *, int32_t, fg_step_output *,
                                 char *err) {
  return unsupported(err);
}
extern "C" int fgcu_attention_host(const fg_batch *, const float *, const float *, const float *,
                                   float *, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t,
                                   float, float, int32_t, int32_t, int32_t, float, float, char *err) {
  return unsupported(err);
}
extern "C" int fgcu_sample_host(const fg_batch *, const float *, int32_t, fg_step_output *, char *err) {
  return unsupported(err);
}
extern "C" int fgcu_mla_attention_host(const fg_batch *, const float *, const float *, float *, int32_t, int32_t,
                                       int32_t, int32_t, int32_t, int32_t, float, float, int32_t, int32_t, float,
                                       char *err) {
  return unsupported(err);
}
extern "C" int fgcu_fp8_linear_host(const float *, int32_t, int32_t, const uint8_t *, int32_t, const float *, int32_t,
                                    float, int32_t, int32_t, float *, int32_t *, char *err) {
  return unsupported(err);
}
extern "C" int fgcu_op_host(int32_t, const int32_t *, const float *, void *const *, char *err) {
  return unsupported(err);
}
