// Row norms (RMSNorm, LayerNorm) fused with the residual add (see norm.cuh).
#include "cuda/norm.cuh"
#include "cuda/rms_fold.cuh"

namespace fgcu {
namespace {

constexpr int kNormThreads = 512;
// The GEMVs that fold the RMSNorm in (rms_fold.cuh) replay norm_kernel's order of sums for 512
// threads, bit for bit: change the two together (test/gpu/pdl.test.ts compares them).
static_assert(kNormThreads == kRmsSumThreads, "rms_fold.cuh replays norm_kernel's sums");
constexpr int kMaxNormCols = 16384;  // 32 values per thread in registers

// One block per row; the row stays in registers (PER values per thread, i = tid + j * 512), so
// the mean is exact before the variance pass (LayerNorm inputs can carry a large offset).
// The norm weight and bias are read into registers before pdl_wait, while the kernel before is
// still running (weights: no kernel of the step writes them); measured -0.2 ms per Llama-7B
// decode step on an H200 (bench/results/cuda-notes.md).
template <int PER>
__global__ void __launch_bounds__(kNormThreads)
    norm_kernel(float *h, const int *rows, int H, const float *add_a, const float *add_b,
                bool write_back, bool write_normed, int op, const float *w, const float *b, float eps,
                bf16 *out) {
  __shared__ float scratch[32];
  float wv[PER], bv[PER];
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    wv[j] = op != kNormNone && i < H ? w[i] : 0.f;
    bv[j] = op != kNormNone && b && i < H ? b[i] : 0.f;
  }
  const size_t row = rows ? rows[blockIdx.x] : blockIdx.x;  // logit rows: uploaded before the step
  pdl_wait();
  pdl_launch_dependents();
  float *src = h + row * H;
  float v[PER];
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    v[j] = 0.f;
    if (i < H) {
      float x = src[i];
      if (add_a) x += add_a[i];
      if (add_b) x += add_b[i];
      if (write_back && (add_a || add_b)) src[i] = x;
      v[j] = x;
      sum += x;
    }
  }
  bf16 *o = out + (size_t)blockIdx.x * H;
  float mean = 0.f, scale = 1.f;
  if (op != kNormNone) {
    if (op == kNormLayer) mean = block_sum(sum, scratch) / H;
    float ss = 0.f;
#pragma unroll
    for (int j = 0; j < PER; j++)
      if (threadIdx.x + j * kNormThreads < H) ss += (v[j] - mean) * (v[j] - mean);
    scale = rsqrtf(block_sum(ss, scratch) / H + eps);
  }
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i >= H) break;
    if (op == kNormNone) {
      o[i] = to_bf(v[j]);
    } else {
      const float y = (v[j] - mean) * scale * wv[j] + bv[j];
      if (write_normed) src[i] = y;
      o[i] = to_bf(y);
    }
  }
}

int launch_norm(float *h, const int *rows, int R, int H, const float *add_a, const float *add_b,
                bool write_back, bool write_normed, NormOp op, const float *w, const float *b, float eps,
                bf16 *out, cudaStream_t stream, char *err) {
  if (R <= 0) return 0;
  if (H > kMaxNormCols) {
    snprintf(err, 512, "norm: hidden size %d > %d is not supported", H, kMaxNormCols);
    return FG_ERR_UNSUPPORTED;
  }
#define FGCU_NORM(PER) \
  launch_k(norm_kernel<PER>, dim3(R), dim3(kNormThreads), 0, stream, h, rows, H, add_a, add_b, write_back, \
           write_normed, (int)op, w, b, eps, out)
  const int per = (H + kNormThreads - 1) / kNormThreads;
  if (per <= 1) FGCU_NORM(1);
  else if (per <= 2) FGCU_NORM(2);
  else if (per <= 4) FGCU_NORM(4);
  else if (per <= 8) FGCU_NORM(8);
  else if (per <= 16) FGCU_NORM(16);
  else FGCU_NORM(32);
#undef FGCU_NORM
  FGCU_LAUNCHED("norm_kernel");
  return 0;
}

// Sandwich norms, one block per row (row in registers as in norm_kernel):
//   v = y + bias; h += rmsnorm(v) * wp; out = rmsnorm(h) * wn (when wn)
template <int PER>
__global__ void __launch_bounds__(kNormThreads)
    post_norm_add_kernel(float *h, const float *y, const float *bias, const float *wp, const float *wn, int H,
                         float eps, bf16 *out) {
  __shared__ float scratch[32];
  float wpv[PER], wnv[PER];
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    wpv[j] = i < H ? wp[i] : 0.f;
    wnv[j] = wn && i < H ? wn[i] : 0.f;
  }
  pdl_wait();
  pdl_launch_dependents();
  const size_t row = blockIdx.x;
  const float *src = y + row * H;
  float *dst = h + row * H;
  float v[PER];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    v[j] = 0.f;
    if (i < H) {
      const float x = bias ? src[i] + bias[i] : src[i];
      v[j] = x;
      ss += x * x;
    }
  }
  const float s1 = rsqrtf(block_sum(ss, scratch) / H + eps);
  float ss2 = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i < H) {
      const float r = dst[i] + v[j] * s1 * wpv[j];
      dst[i] = r;
      v[j] = r;
      ss2 += r * r;
    }
  }
  if (!wn) return;
  const float s2 = rsqrtf(block_sum(ss2, scratch) / H + eps);
  bf16 *o = out + row * H;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i < H) o[i] = to_bf(v[j] * s2 * wnv[j]);
  }
}

}  // namespace

int post_norm_add(float *h, const float *y, const float *bias, const float *w_post, const float *w_next, int R,
                  int H, float eps, bf16 *out, cudaStream_t stream, char *err) {
  if (R <= 0) return 0;
  if (H > kMaxNormCols) {
    snprintf(err, 512, "norm: hidden size %d > %d is not supported", H, kMaxNormCols);
    return FG_ERR_UNSUPPORTED;
  }
#define FGCU_NORM(PER)                                                                                 \
  launch_k(post_norm_add_kernel<PER>, dim3(R), dim3(kNormThreads), 0, stream, h, y, bias, w_post, w_next, H, \
           eps, out)
  const int per = (H + kNormThreads - 1) / kNormThreads;
  if (per <= 1) FGCU_NORM(1);
  else if (per <= 2) FGCU_NORM(2);
  else if (per <= 4) FGCU_NORM(4);
  else if (per <= 8) FGCU_NORM(8);
  else if (per <= 16) FGCU_NORM(16);
  else FGCU_NORM(32);
#undef FGCU_NORM
  FGCU_LAUNCHED("post_norm_add_kernel");
  return 0;
}

int norm_rows(float *h, const int *rows, int R, int H, const float *add_a, const float *add_b,
              bool write_back, NormOp op, const float *w, const float *b, float eps, bf16 *out,
              cudaStream_t stream, char *err) {
  return launch_norm(h, rows, R, H, add_a, add_b, write_back, false, op, w, b, eps, out, stream, err);
}

int norm_rows_in_place(float *h, int R, int H, const float *add_a, NormOp op, const float *w, const float *b,
                       float eps, bf16 *out, cudaStream_t stream, char *err) {
  return launch_norm(h, nullptr, R, H, add_a, nullptr, true, true, op, w, b, eps, out, stream, err);
}

}  // namespace fgcu
