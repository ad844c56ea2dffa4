// fgcu_device_props (cuda_api.h): what the core's capability checks say about a GPU.
#include <cuda_runtime.h>
#include <stdio.h>

#include "cuda/cuda_api.h"

extern "C" int fgcu_device_props(int32_t dev, char *name, int32_t *major, int32_t *minor, char *err) {
  cudaDeviceProp p;
  const cudaError_t e = cudaGetDeviceProperties(&p, dev);
  if (e != cudaSuccess) {
    cudaGetLastError();
    snprintf(err, 512, "CUDA device %d: %s", dev, cudaGetErrorString(e));
    return FG_ERR_DEVICE;
  }
  snprintf(name, 256, "%s", p.name);
  *major = p.major, *minor = p.minor;
  return 0;
}
