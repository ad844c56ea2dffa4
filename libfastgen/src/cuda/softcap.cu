// Logit soft-capping (see softcap.cuh).
#include "cuda/softcap.cuh"

namespace fgcu {
namespace {

__global__ void softcap_kernel(float *x, size_t n, float cap) {
  const float inv = 1.f / cap;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    x[i] = cap * tanhf(x[i] * inv);
}

}  // namespace

int softcap(float *x, size_t n, float cap, cudaStream_t stream, char *err) {
  if (n == 0) return 0;
  const size_t blocks = (n + 255) / 256;
  softcap_kernel<<<(int)(blocks < 4096 ? blocks : 4096), 256, 0, stream>>>(x, n, cap);
  FGCU_LAUNCHED("softcap_kernel");
  return 0;
}

}  // namespace fgcu
