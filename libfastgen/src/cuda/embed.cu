// Token embedding (a vocabulary shard) and learned positions (see embed.cuh).
#include "cuda/embed.cuh"

namespace fgcu {
namespace {

__global__ void embed_kernel(const bf16 *embed, float scale, const float *pos_embed, const int *token_ids,
                             const int *positions, int H, int vocab_begin, int vocab_rows, float *h) {
  const int t = blockIdx.x;
  const int row = token_ids[t] - vocab_begin;
  const bf16 *e = row >= 0 && row < vocab_rows ? embed + (size_t)row * H : nullptr;
  const float *pe = pos_embed ? pos_embed + (size_t)positions[t] * H : nullptr;
  float *dst = h + (size_t)t * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = (e ? to_f(e[i]) * scale : 0.f) + (pe ? pe[i] : 0.f);
}

__global__ void pos_kernel(const float *pos_embed, const int *positions, int H, float *h) {
  const float *pe = pos_embed + (size_t)positions[blockIdx.x] * H;
  float *dst = h + (size_t)blockIdx.x * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] += pe[i];
}

}  // namespace

int add_pos_embed(const float *pos_embed, const int *positions, int T, int H, float *h, cudaStream_t stream,
                  char *err) {
  if (T <= 0) return 0;
  pos_kernel<<<T, 256, 0, stream>>>(pos_embed, positions, H, h);
  FGCU_LAUNCHED("pos_kernel");
  return 0;
}

int embed_tokens(const bf16 *embed, float scale, const float *pos_embed, const int *token_ids,
                 const int *positions, int T, int H, int vocab_begin, int vocab_rows, float *h,
                 cudaStream_t stream, char *err) {
  if (T <= 0) return 0;
  embed_kernel<<<T, 256, 0, stream>>>(embed, scale, pos_embed, token_ids, positions, H, vocab_begin, vocab_rows, h);
  FGCU_LAUNCHED("embed_kernel");
  return 0;
}

}  // namespace fgcu
