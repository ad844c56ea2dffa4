// Bias rows added to an fp32 GEMM output (see bias.cuh).
#include "cuda/bias.cuh"

namespace fgcu {
namespace {

__global__ void bias_kernel(float *y, const float *bias, int N) {
  float *row = y + (size_t)blockIdx.x * N;
  for (int i = threadIdx.x; i < N; i += blockDim.x) row[i] += bias[i];
}

}  // namespace

int add_bias_rows(float *y, const float *bias, int R, int N, cudaStream_t stream, char *err) {
  if (R <= 0) return 0;
  bias_kernel<<<R, 256, 0, stream>>>(y, bias, N);
  FGCU_LAUNCHED("bias_kernel");
  return 0;
}

}  // namespace fgcu
