// Built instead of the .cu files when nvcc is absent (-Dcuda=off): every CUDA entry point
// answers "not built with CUDA".
#include <stdio.h>

#include "cuda/cuda_api.h"

extern "C" int32_t fgcu_device_count(void) { return 0; }

extern "C" int fgcu_rmsnorm_host(const float *, const float *, float *, int32_t, int32_t, float,
                                 char *err) {
  snprintf(err, 512, "libfastgen was built without CUDA (nvcc not found at build time)");
  return 1;
}
