// The few cuBLASLt declarations libfastgen uses. The build machine has no cuBLAS headers and the
// library is opened at run time (dlopen "libcublasLt.so.13"), so the types, enum values and
// prototypes are restated here from cublasLt.h / cublas_api.h (values stable across 11.x-13.x).
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
