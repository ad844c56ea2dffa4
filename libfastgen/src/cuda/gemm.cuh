// GEMMs of the CUDA backend: y[M, N] (+)= x[M, K] · w[N, K]^T, bf16 operands, fp32 accumulation.
// Skinny products (decode: M <= 8) run a weight-streaming kernel of our own; the rest go to
// cuBLASLt, opened at run time (dlopen), with one workspace allocated once.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

struct Gemm;

// Opens cuBLASLt and allocates its workspace. Fails with FG_ERR_UNSUPPORTED when the library is
// missing, FG_ERR_OUT_OF_MEMORY / FG_ERR_DEVICE otherwise.
int gemm_create(Gemm **out, char *err);
void gemm_destroy(Gemm *g);
uint64_t gemm_workspace_bytes();

// x: [M, K] bf16 row-major; w: [N, K] bf16 row-major (nn.Linear.weight).
// y: [M, N], fp32 when y_f32 else bf16; accumulate (fp32 only): y += x · w^T.
int gemm(Gemm *g, const bf16 *x, const bf16 *w, void *y, bool y_f32, bool accumulate, int M, int N,
         int K, cudaStream_t stream, char *err);

// Largest M the weight-streaming kernel takes; FASTGEN_GEMV=0 turns it off (cuBLASLt only).
int gemv_max_m();

}  // namespace fgcu
