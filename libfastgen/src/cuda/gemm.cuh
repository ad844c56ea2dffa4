// GEMMs of the CUDA backend: y[M, N] (+)= x[M, K] · w[N, K]^T, bf16 operands, fp32 accumulation.
// Products of 1-16 rows (decode at batch 1-16) run weight-streaming kernels of our own (M = 1 on
// CUDA cores, 2..16 on tensor cores: gemv_small.cuh); the rest go to cuBLASLt, opened at run time
// (dlopen), with one workspace allocated once. At those small M the RMSNorm before a projection
// can be folded into its GEMV (gemv_rms).
#pragma once
#include "cuda/common.cuh"
#include "cuda/cublaslt.h"
#include "cuda/rms_fold.cuh"

namespace fgcu {

struct Gemm;

// Opens cuBLASLt and allocates its workspace. Fails with FG_ERR_UNSUPPORTED when the library is
// missing, FG_ERR_OUT_OF_MEMORY / FG_ERR_DEVICE otherwise.
int gemm_create(Gemm **out, char *err);
void gemm_destroy(Gemm *g);
uint64_t gemm_workspace_bytes();

// The cuBLASLt library, handle and workspace a Gemm opened, lent to the FP8 GEMMs (fp8_gemm.cu)
// so that one process opens cuBLASLt once. Work queued on one stream may share the workspace.
struct LtContext {
  const LtApi *api;
  cublasLtHandle_t handle;
  void *workspace;
  uint64_t workspace_bytes;
};
LtContext gemm_lt(Gemm *g);

// x: [M, K] bf16 row-major; w: [N, K] bf16 row-major (nn.Linear.weight).
// y: [M, N], fp32 when y_f32 else bf16; accumulate (fp32 only): y += x · w^T.
int gemm(Gemm *g, const bf16 *x, const bf16 *w, void *y, bool y_f32, bool accumulate, int M, int N,
         int K, cudaStream_t stream, char *err);

// The same through cuBLASLt whatever M (the test hook's reference and the benches' baseline).
int gemm_cublaslt(Gemm *g, const bf16 *x, const bf16 *w, void *y, bool y_f32, bool accumulate, int M,
                  int N, int K, cudaStream_t stream, char *err);

// Gated MLP input for M <= gemv_max_m(): w [N = 2I, K] with rows interleaved (gate_i, up_i), bias [N]
// likewise or null; y[M, I] = act(gate) * up in bf16 (act: 0 silu, 1 gelu, 2 gelu_tanh).
// Returns false (nothing launched) when the shape is not one it takes.
bool gemv_gated(const bf16 *x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N,
                int K, cudaStream_t stream);

// Whether one-token GEMMs run the CUDA-core GEMV kernels (gemv_max_m() >= 1, FASTGEN_GEMV_SMALL_AT_1
// off), whose per-row sums the qkv GEMV with RoPE (rope.cu qkv_gemv_rope) repeats.
bool gemv_one_token();

// Whether gemm() and gemv_gated() send M rows of width K to the small-M kernel (gemv_small.cuh).
bool gemm_small_takes(int M, int K);

// FASTGEN_NORM_DEFER: decode passes of up to this many tokens take their RMSNorms deferred into
// the GEMVs (gemv_rms_deferred at one token, rms_fold.cuh DeferredNorm where the small-M kernel runs).
int norm_defer_max_m();

// Largest M the weight-streaming kernels take (16; FASTGEN_GEMV_MAX_M lowers it, 1 keeps the
// one-token kernel only); 0 under FASTGEN_GEMV=0 (cuBLASLt only).
int gemv_max_m();

// The RMSNorm folded into the GEMV (rms_fold.cuh): x given as RmsRows (residual rows h [M, K] and
// the norm weight), y bf16 [M, N]. The kernel and the order of every sum are those gemm() and
// gemv_gated() pick for the shape, so y is bit-identical to norm_rows (RMSNorm, no added rows)
// followed by them. gemv_rms_fits: whether M rows of width K fold (M <= FASTGEN_NORM_FOLD and the
// GEMVs take M, K % 8 == 0, x fits the kernel's shared memory); the two calls fail with
// FG_ERR_INTERNAL otherwise (gated: also N even, act 0..2, as gemv_gated).
bool gemv_rms_fits(int M, int K);
int gemv_rms(const RmsRows &x, const bf16 *w, bf16 *y, int M, int N, int K, cudaStream_t stream, char *err);
int gemv_rms_gated(const RmsRows &x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N, int K,
                   cudaStream_t stream, char *err);

// The RMSNorm with its scale deferred (FASTGEN_NORM_DEFER, one token): the two-row GEMV reads the
// residual row h and the norm weight, sums x = h * w against the weights and h^2 on the way, and
// scales its sums by rsqrt(mean(h^2) + eps) at the end (gemv2.cuh XRmsDeferred): no norm kernel,
// no prologue. Not bit-identical to norm_rows + gemm() (x is never rounded to bf16). act < 0: y
// [1, N] bf16; act 0..2: gated rows as gemv_gated (y [1, N / 2], bias interleaved or null).
// gemv_rms_deferred_takes: the knob is on, M == 1, the one-token GEMVs run, K % 8 == 0.
bool gemv_rms_deferred_takes(int M, int K);
int gemv_rms_deferred(const RmsRows &x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N, int K,
                      cudaStream_t stream, char *err);

}  // namespace fgcu
