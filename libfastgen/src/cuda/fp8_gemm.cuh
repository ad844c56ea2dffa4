// GEMMs over FP8 E4M3 weights (weight.cuh): y[M, N] (+)= x[M, K] · w[N, K]^T, x bf16, w FP8.
//
//   fp8_gemv_max_m() < M <= fp8_small_max_m()   (FASTGEN_FP8_SMALL_MAX_M, default 8) the tensor-core
//                           small-M kernel (gemv_small.cuh) with FP8 loaders, weight-only.
//   M <= fp8_gemv_max_m()   (FASTGEN_FP8_GEMV_MAX_M; default: 1 on GPUs of >= 4 TB/s, else 0) GEMV, weight-only: x stays bf16, the weight streams through 16-byte
//                           loads (16 values), is converted in registers and scaled per row (or
//                           per K segment), fp32 accumulation. Roofline: N*K bytes, half of bf16.
//   larger M                W8A8 on cuBLASLt: x quantized to E4M3 per token (dynamic: amax / 448;
//                           static: the checkpoint's input_scale), E4M3 x E4M3 ("TN") with the
//                           per-channel weight scales and per-token activation scales as
//                           outer-vector scales (cuBLAS 12.9+), fp32 accumulation, bf16/fp32 out.
//   fallback (dequantize)   the weight is dequantized into a bf16 scratch and cuBLASLt multiplies
//                           in bf16 (weight-only; 5 bytes moved per weight instead of 1). Taken by
//                           weights with K-segment scales (128 x 128 blocks) above the GEMV's 8
//                           rows: Hopper's cuBLASLt block scaling wants scale layouts of its own,
//                           not done; by shapes its FP8 kernels refuse (N or K not multiples of
//                           16); and everywhere when the probe (fp8_probe) found outer-vector
//                           scaling missing or wrong in this cuBLASLt.
// CPU twin: the CPU backend's GEMM on the dequantized weight (weight-only; core/fp8.h).
#pragma once
#include "cuda/common.cuh"
#include "cuda/gemm.cuh"
#include "cuda/weight.cuh"

namespace fgcu {

struct Fp8Gemm;

// Shares g's cuBLASLt handle and workspace (gemm_lt); g must outlive it.
int fp8_gemm_create(Gemm *g, Fp8Gemm **out, char *err);
void fp8_gemm_destroy(Fp8Gemm *f);

// Checks once, on `st`, that cuBLASLt's FP8 GEMM with outer-vector scales runs and gives the
// expected numbers (32 x 64 x 64 products, into bf16 and accumulating into fp32). Until it has run,
// and for an output type where it failed, larger M takes the dequantize fallback. Syncs `st`; never fails the engine
// for a cuBLASLt that lacks the feature (the fallback is correct, only slower).
int fp8_probe(Fp8Gemm *f, cudaStream_t st, char *err);
// Whether the W8A8 cuBLASLt path is in use for bf16 (y_f32 false) or fp32 outputs: the probe
// passed for that output type and FASTGEN_FP8_LT is not 0.
bool fp8_lt_ok(const Fp8Gemm *f, bool y_f32);

// Grows the workspaces (grow them while the stream is idle, outside a graph capture): the
// activations of M rows up to width K quantized to E4M3 with their scales, and the fallback's bf16
// scratch of dequant_elems (the largest weight that may take it; 0 leaves it as it is).
int fp8_reserve(Fp8Gemm *f, int M, int K, size_t dequant_elems, char *err);
// The workspaces' device addresses folded into one word, for a CUDA graph's key.
uint64_t fp8_workspace_key(const Fp8Gemm *f);

// Largest M the GEMV takes (FASTGEN_FP8_GEMV_MAX_M, at most 8).
int fp8_gemv_max_m();
// Largest M the tensor-core small-M kernel takes (FASTGEN_FP8_SMALL_MAX_M, at most 16; below 2: off).
int fp8_small_max_m();
// Whether fp8_linear() and fp8_gemv_gated() send M rows to the small-M kernel.
bool fp8_small_takes(int M);

enum Fp8Path { kFp8Auto = 0, kFp8Gemv = 1, kFp8Lt = 2, kFp8Dequant = 3, kFp8Small = 4 };
// The path fp8_linear takes for w at M rows into a bf16 or fp32 y (never kFp8Auto).
int fp8_path(const Fp8Gemm *f, const Weight &w, int M, int N, int K, bool y_f32);

// As gemm() (gemm.cuh) with an FP8 weight: y [M, N] bf16, or fp32 (+= with accumulate).
// x: [M, K] bf16 row-major, 16-byte aligned; K % 16 == 0 (load.cu keeps no other FP8 weight).
// path: kFp8Auto, or a path to force (test hook; FG_ERR_INVALID_ARGUMENT where it cannot run).
int fp8_linear(Fp8Gemm *f, const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int M,
               int N, int K, cudaStream_t st, char *err, int path = kFp8Auto);

// As gemv_gated() (gemm.cuh) with an FP8 weight (rows interleaved gate_i, up_i): y[M, N / 2] =
// act(gate + bias) * (up + bias) in bf16. False (nothing launched) where M is above the GEMV's
// and the small-M kernel's.
bool fp8_gemv_gated(const bf16 *x, const Weight &w, const float *bias, int act, bf16 *y, int M, int N,
                    int K, cudaStream_t st);

}  // namespace fgcu
