// The few cuBLASLt declarations libfastgen uses. The build machine has no cuBLAS headers and the
// library is opened at run time (dlopen "libcublasLt.so.13"), so the types, enum values and
// prototypes are restated here from cublasLt.h / cublas_api.h (values stable across 11.x-13.x;
// the FP8 scale modes are cuBLAS 12.9+), and the table of entry points gemm.cu opens is LtApi.
#pragma once
#include <library_types.h>  // cudaDataType (CUDA_R_16BF, CUDA_R_32F): part of cudart
#include <stddef.h>
#include <stdint.h>

extern "C" {

typedef int cublasStatus_t;  // 0 = CUBLAS_STATUS_SUCCESS
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef struct cublasLtMatmulDescOpaque *cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque *cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque *cublasLtMatmulPreference_t;

typedef struct {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
} cublasLtMatmulHeuristicResult_t;

enum {
  FG_CUBLAS_COMPUTE_32F = 68,
  FG_CUBLAS_OP_N = 0,
  FG_CUBLAS_OP_T = 1,
  FG_CUBLASLT_MATMUL_DESC_TRANSA = 3,
  FG_CUBLASLT_MATMUL_DESC_TRANSB = 4,
  FG_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
  // FP8 (cublasLtMatmulDescAttributes_t): device pointers to fp32 scales of A and B, the
  // fast-accumulation switch (int8_t), and how A's / B's scale pointer is read (int32_t).
  FG_CUBLASLT_MATMUL_DESC_A_SCALE_POINTER = 17,
  FG_CUBLASLT_MATMUL_DESC_B_SCALE_POINTER = 18,
  FG_CUBLASLT_MATMUL_DESC_FAST_ACCUM = 25,
  FG_CUBLASLT_MATMUL_DESC_A_SCALE_MODE = 31,
  FG_CUBLASLT_MATMUL_DESC_B_SCALE_MODE = 32,
  // cublasLtMatmulMatrixScale_t: one fp32 scalar (the default), or one fp32 per row of op(A) and
  // per column of op(B) ("outer vector", cuBLAS 12.9+ on Hopper; both A and B must use it).
  FG_CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F = 0,
  FG_CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F = 3,
};

typedef cublasStatus_t (*PFN_cublasLtCreate)(cublasLtHandle_t *);
typedef cublasStatus_t (*PFN_cublasLtDestroy)(cublasLtHandle_t);
typedef cublasStatus_t (*PFN_cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t *, int /*compute*/,
                                                       cudaDataType_t /*scale*/);
typedef cublasStatus_t (*PFN_cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t);
typedef cublasStatus_t (*PFN_cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t, int, const void *,
                                                             size_t);
typedef cublasStatus_t (*PFN_cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t *, cudaDataType_t,
                                                         uint64_t rows, uint64_t cols, int64_t ld);
typedef cublasStatus_t (*PFN_cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t);
typedef cublasStatus_t (*PFN_cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t *);
typedef cublasStatus_t (*PFN_cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t);
typedef cublasStatus_t (*PFN_cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t, int,
                                                                   const void *, size_t);
typedef cublasStatus_t (*PFN_cublasLtMatmulAlgoGetHeuristic)(
    cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
    cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int requested,
    cublasLtMatmulHeuristicResult_t *results, int *returned);
typedef cublasStatus_t (*PFN_cublasLtMatmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *alpha,
                                             const void *A, cublasLtMatrixLayout_t, const void *B,
                                             cublasLtMatrixLayout_t, const void *beta, const void *C,
                                             cublasLtMatrixLayout_t, void *D, cublasLtMatrixLayout_t,
                                             const cublasLtMatmulAlgo_t *, void *workspace,
                                             size_t workspace_bytes, void *stream);
}

// The entry points gemm.cu opens (dlsym); gemm_lt() (gemm.cuh) lends them to the FP8 GEMMs.
struct LtApi {
  void *lib;
  PFN_cublasLtCreate create;
  PFN_cublasLtDestroy destroy;
  PFN_cublasLtMatmulDescCreate desc_create;
  PFN_cublasLtMatmulDescDestroy desc_destroy;
  PFN_cublasLtMatmulDescSetAttribute desc_set;
  PFN_cublasLtMatrixLayoutCreate layout_create;
  PFN_cublasLtMatrixLayoutDestroy layout_destroy;
  PFN_cublasLtMatmulPreferenceCreate pref_create;
  PFN_cublasLtMatmulPreferenceDestroy pref_destroy;
  PFN_cublasLtMatmulPreferenceSetAttribute pref_set;
  PFN_cublasLtMatmulAlgoGetHeuristic heuristic;
  PFN_cublasLtMatmul matmul;
};
