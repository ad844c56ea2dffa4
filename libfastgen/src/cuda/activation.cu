// MLP activations, gated and plain (see activation.cuh).
#include "cuda/activation.cuh"

namespace fgcu {
namespace {

// plain: 8 outputs per thread when I % 8 == 0 (16-byte accesses), else 1.
template <int VEC>
__global__ void act_plain_kernel(const bf16 *in, const float *bias, bf16 *out, int T, int I, int kind) {
  const size_t n = (size_t)T * I / VEC;
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < n; v += (size_t)gridDim.x * blockDim.x) {
    const size_t e = v * VEC;
    const int i = (int)(e % I);
    float g[8];
    if (VEC == 8) load8(in + e, g);
    else g[0] = to_f(in[e]);
#pragma unroll
    for (int k = 0; k < VEC; k++) g[k] = activate(kind, bias ? g[k] + bias[i + k] : g[k]);
    if (VEC == 8) store8(out + e, g);
    else out[e] = to_bf(g[0]);
  }
}

// gated: in [T, 2I] with columns interleaved (gate_i, up_i) -> out [T, I].
__global__ void act_gated_kernel(const bf16 *in, const float *bias, bf16 *out, int T, int I, int kind) {
  const size_t n = (size_t)T * I;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
    const int i = (int)(e % I);
    const float2 gu = __bfloat1622float2(reinterpret_cast<const __nv_bfloat162 *>(in)[e]);
    const float g = bias ? gu.x + bias[2 * i] : gu.x, u = bias ? gu.y + bias[2 * i + 1] : gu.y;
    out[e] = to_bf(activate(kind, g) * u);
  }
}

int grid_for(size_t n, int threads) {
  size_t blocks = (n + threads - 1) / threads;
  return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

}  // namespace

int activation(const bf16 *in, const float *bias, bf16 *out, int T, int I, ActKind kind,
               cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  const size_t n = (size_t)T * I;
  if (kind <= kGatedGeluTanh) act_gated_kernel<<<grid_for(n, 256), 256, 0, stream>>>(in, bias, out, T, I, kind);
  else if (I % 8 == 0) act_plain_kernel<8><<<grid_for(n / 8, 256), 256, 0, stream>>>(in, bias, out, T, I, kind);
  else act_plain_kernel<1><<<grid_for(n, 256), 256, 0, stream>>>(in, bias, out, T, I, kind);
  FGCU_LAUNCHED("act_kernel");
  return 0;
}

}  // namespace fgcu
