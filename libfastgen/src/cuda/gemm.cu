// GEMM dispatch: a weight-streaming CUDA-core GEMV for M = 1, the tensor-core small-M GEMV
// (gemv_small.cuh) for M = 2..16, cuBLASLt (dlopen) for the rest.
//
// Row-major y[M, N] = x[M, K] · w[N, K]^T is, in cuBLASLt's column-major terms,
//   y^T (N x M, ld N) = op_T(A = w as K x N, ld K) · (B = x^T as K x M, ld K)   ("TN").
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cublaslt.h"
#include "cuda/gemm.cuh"
#include "cuda/gemv2.cuh"
#include "cuda/gemv_small.cuh"
#include "cuda/rms_fold.cuh"

namespace fgcu {
namespace {

constexpr uint64_t kWorkspaceBytes = 32ull << 20;
constexpr int kCacheSize = 256;
// Measured on an H200 (bench/gpu/llama7b.ts, 2026-11-22): the CUDA-core streaming kernel wins at
// M = 1 (4.24 vs 4.50 ms per Llama-7B decode step) but already lost to cuBLASLt at M = 2 (5.2 ms
// for 2 tokens vs 6.0 ms for 16 through cuBLASLt), since it re-read x per row from L1 and paid M
// fp32 FMAs per weight; M = 2..16 run the tensor-core kernel of gemv_small.cuh instead.
constexpr int kGemvMaxM = kGemvSmallMaxM;

typedef LtApi Api;  // cublaslt.h: the table FP8 GEMMs borrow through gemm_lt()

// One planned shape: descriptors and the heuristic's algorithm.
struct Plan {
  int M = 0, N = 0, K = 0;
  bool y_f32 = false, acc = false, used = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo;
};

}  // namespace

struct Gemm {
  Api api;
  cublasLtHandle_t handle = nullptr;
  void *workspace = nullptr;
  Plan plans[kCacheSize];
  int next_victim = 0;
};

namespace {

int open_api(Api &api, char *err) {
  const char *names[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"};
  for (const char *n : names) {
    api.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
    if (api.lib) break;
  }
  if (!api.lib) {
    snprintf(err, 512, "cuBLASLt not found (dlopen libcublasLt.so.13: %s)", dlerror());
    return FG_ERR_UNSUPPORTED;
  }
#define FGCU_SYM(field, name)                                                      \
  api.field = (decltype(api.field))dlsym(api.lib, name);                           \
  if (!api.field) {                                                                \
    snprintf(err, 512, "cuBLASLt: symbol %s missing", name);                       \
    return FG_ERR_UNSUPPORTED;                                                     \
  }
  FGCU_SYM(create, "cublasLtCreate");
  FGCU_SYM(destroy, "cublasLtDestroy");
  FGCU_SYM(desc_create, "cublasLtMatmulDescCreate");
  FGCU_SYM(desc_destroy, "cublasLtMatmulDescDestroy");
  FGCU_SYM(desc_set, "cublasLtMatmulDescSetAttribute");
  FGCU_SYM(layout_create, "cublasLtMatrixLayoutCreate");
  FGCU_SYM(layout_destroy, "cublasLtMatrixLayoutDestroy");
  FGCU_SYM(pref_create, "cublasLtMatmulPreferenceCreate");
  FGCU_SYM(pref_destroy, "cublasLtMatmulPreferenceDestroy");
  FGCU_SYM(pref_set, "cublasLtMatmulPreferenceSetAttribute");
  FGCU_SYM(heuristic, "cublasLtMatmulAlgoGetHeuristic");
  FGCU_SYM(matmul, "cublasLtMatmul");
#undef FGCU_SYM
  return 0;
}

void release_plan(const Api &api, Plan &p) {
  if (p.desc) api.desc_destroy(p.desc);
  if (p.a) api.layout_destroy(p.a);
  if (p.b) api.layout_destroy(p.b);
  if (p.c) api.layout_destroy(p.c);
  p = Plan();
}

int make_plan(Gemm *g, Plan &p, int M, int N, int K, bool y_f32, bool acc, char *err) {
  const Api &api = g->api;
  p.M = M, p.N = N, p.K = K, p.y_f32 = y_f32, p.acc = acc;
  const cudaDataType_t ytype = y_f32 ? CUDA_R_32F : CUDA_R_16BF;
  const int op_t = FG_CUBLAS_OP_T, op_n = FG_CUBLAS_OP_N;
  cublasStatus_t st = api.desc_create(&p.desc, FG_CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t);
  if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof op_n);
  if (!st) st = api.layout_create(&p.a, CUDA_R_16BF, K, N, K);
  if (!st) st = api.layout_create(&p.b, CUDA_R_16BF, K, M, K);
  if (!st) st = api.layout_create(&p.c, ytype, N, M, N);
  cublasLtMatmulPreference_t pref = nullptr;
  if (!st) st = api.pref_create(&pref);
  const uint64_t ws = kWorkspaceBytes;
  if (!st) st = api.pref_set(pref, FG_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  cublasLtMatmulHeuristicResult_t res;
  memset(&res, 0, sizeof res);
  int found = 0;
  if (!st) st = api.heuristic(g->handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
  if (pref) api.pref_destroy(pref);
  if (st || found < 1) {
    snprintf(err, 512, "cuBLASLt: no algorithm for bf16 GEMM M=%d N=%d K=%d (status %d)", M, N, K, st);
    release_plan(api, p);
    return FG_ERR_DEVICE;
  }
  p.algo = res.algo;
  p.used = true;
  return 0;
}

// Narrow outputs (N < 8192: o, down) at M = 1: one warp per weight row n, streaming it with
// 16-byte loads, 8 in flight per thread (a whole 4096-wide row in two rounds). K % 8 == 0.
// FOLD (this and the kernels below): x is rms's RMSNorm row, built in shared memory after pdl_wait
// (rms_fold.cuh); the x argument is unused.
template <bool Y_F32, bool ACC, bool FOLD = false>
__global__ void __launch_bounds__(256) gemv_kernel(const bf16 *__restrict__ x,
                                                   const bf16 *__restrict__ w, void *__restrict__ y,
                                                   int N, int K, RmsRows rms) {
  constexpr int U = 8;
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * 8 + (threadIdx.x >> 5);
  const bf16 *wr = w + (size_t)(n < N ? n : 0) * K;
  float acc = 0.f;
  uint4 wv[U];
  auto load_round = [&](int k0) {
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int k = k0 + u * 256;
      wv[u] = k < K ? __ldcs(reinterpret_cast<const uint4 *>(wr + k)) : make_uint4(0, 0, 0, 0);
    }
  };
  // The first round of weights is in flight while the previous kernel finishes (launch_k).
  if (n < N) load_round(lane * 8);
  if constexpr (FOLD) rms_prefetch(rms, K);
  pdl_wait();
  pdl_launch_dependents();
  if constexpr (FOLD) x = rms_row_to_shared(rms, K);  // every warp, the idle ones too
  if (n >= N) return;
  for (int k0 = lane * 8; k0 < K; k0 += U * 256) {
    if (k0 != lane * 8) load_round(k0);
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int k = k0 + u * 256;
      if (k >= K) break;
      float wf[8];
      unpack8(wv[u], wf);
      float xv[8];
      load8(x + k, xv);
#pragma unroll
      for (int i = 0; i < 8; i++) acc = fmaf(xv[i], wf[i], acc);
    }
  }
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane != 0) return;
  if (Y_F32) {
    float *yf = static_cast<float *>(y);
    yf[n] = ACC ? yf[n] + acc : acc;
  } else {
    static_cast<bf16 *>(y)[n] = to_bf(acc);
  }
}

// The narrow kernel at M = 1, software-pipelined: two halves of 4 loads per thread, one always in
// flight while the other is multiplied, so a warp never waits with nothing requested (the plain
// kernel's warps all load, then all compute: in its single wave the DRAM queue runs dry between
// rounds). Same registers as 8 loads in one round. FASTGEN_GEMV_PIPE=0: the plain kernel.
// Measured on an H200: o + down 20.7 -> 19.4 us a layer, decode b=1 3.83 -> 3.73 ms. The same
// pipelining in the wide kernel (qkv, gate_up) made those slower (26 -> 28.6, 43.5 -> 46 us).
// FOLD: at most 64 registers (4 blocks an SM, as unfolded; its prologue pushed it to 66); 0: no
// minimum, the unfolded kernels compile as before.
template <bool Y_F32, bool ACC, bool FOLD = false>
__global__ void __launch_bounds__(256, FOLD ? 4 : 0) gemv_pipe_kernel(const bf16 *__restrict__ x,
                                                        const bf16 *__restrict__ w, void *__restrict__ y,
                                                        int N, int K, RmsRows rms) {
  constexpr int H = 4, HALF = H * 256;  // loads per half; K elements a half covers (whole warp)
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * 8 + (threadIdx.x >> 5);
  const bool live = n < N;
  const bf16 *wr = w + (size_t)(live ? n : 0) * K;
  uint4 a[H], b[H];
  auto load = [&](uint4 (&v)[H], int k0) {
#pragma unroll
    for (int u = 0; u < H; u++) {
      const int k = k0 + u * 256;
      v[u] = k < K ? __ldcs(reinterpret_cast<const uint4 *>(wr + k)) : make_uint4(0, 0, 0, 0);
    }
  };
  float acc = 0.f;
  auto fma_half = [&](const uint4 (&v)[H], int k0) {
#pragma unroll
    for (int u = 0; u < H; u++) {
      const int k = k0 + u * 256;
      if (k >= K) break;
      float xv[8];
      load8(x + k, xv);
      const __nv_bfloat162 *hw = reinterpret_cast<const __nv_bfloat162 *>(&v[u]);
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const float2 f = __bfloat1622float2(hw[i]);
        acc = fmaf(xv[2 * i], f.x, acc);
        acc = fmaf(xv[2 * i + 1], f.y, acc);
      }
    }
  };
  int k0 = lane * 8;
  // Both halves of the first round are in flight while the previous kernel finishes (launch_k).
  if (live) {
    load(a, k0);
    load(b, k0 + HALF);
  }
  if constexpr (FOLD) rms_prefetch(rms, K);
  pdl_wait();
  pdl_launch_dependents();
  if constexpr (FOLD) x = rms_row_to_shared(rms, K);
  if (!live) return;
  for (; k0 < K; k0 += 2 * HALF) {
    fma_half(a, k0);
    if (k0 + 2 * HALF < K) load(a, k0 + 2 * HALF);
    fma_half(b, k0 + HALF);
    if (k0 + 3 * HALF < K) load(b, k0 + 3 * HALF);
  }
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane != 0) return;
  if (Y_F32) {
    float *yf = static_cast<float *>(y);
    yf[n] = ACC ? yf[n] + acc : acc;
  } else {
    static_cast<bf16 *>(y)[n] = to_bf(acc);
  }
}

// Wide outputs (N >= 8192: qkv, gate_up) at M = 1: one warp streams 2 weight rows, 4 loads in
// flight per row; measured faster there than one row per warp (bench/gpu, H200).
// ACT >= 0 (gated MLPs, rows interleaved gate_i, up_i): the warp's two rows are one gate/up
// pair, so it writes y[n0 / 2] = act(gate + bias) * (up + bias) and the activation kernel
// is not needed (bias: [N] interleaved like the rows, or null).
template <bool Y_F32, bool ACC, int ACT = -1, bool FOLD = false, bool DEFER = false>
__global__ void __launch_bounds__(128, DEFER ? 8 : 0) gemv2_kernel(const bf16 *__restrict__ x,
                                                    const bf16 *__restrict__ w, void *__restrict__ y,
                                                    int N, int K, const float *bias, RmsRows rms) {
  const int lane = threadIdx.x & 31;
  const int n0_ = (blockIdx.x * 4 + (threadIdx.x >> 5)) * 2;
  const bool live = n0_ < N;  // dead warps still pass pdl_wait
  const int n0 = live ? n0_ : 0;
  const int n1 = n0 + 1 < N ? n0 + 1 : n0;
  float acc[2];
  // DEFER: x is rms's RMSNorm row with its scale applied to the sums (gemv2.cuh XRmsDeferred)
  auto xr = x_row<DEFER>(x, rms);
  const bool ran = gemv2_dots(w + (size_t)n0 * K, w + (size_t)n1 * K, K, live, [&](auto &r) {
    if constexpr (FOLD) rms_prefetch(rms, K);
    pdl_wait();
    pdl_launch_dependents();
    if constexpr (FOLD) r.x = rms_row_to_shared(rms, K);
  }, xr, acc);
  if (!ran || lane != 0) return;
  if constexpr (ACT >= 0) {
    const float gb = bias ? bias[n0] : 0.f, ub = bias ? bias[n0 + 1] : 0.f;
    static_cast<bf16 *>(y)[n0 / 2] = to_bf(activate(ACT, acc[0] + gb) * (acc[1] + ub));
  } else {
#pragma unroll
    for (int c = 0; c < 2; c++) {
      if (c == 1 && n1 == n0) break;
      const size_t i = (size_t)n0 + c;
      if (Y_F32) {
        float *yf = static_cast<float *>(y);
        yf[i] = ACC ? yf[i] + acc[c] : acc[c];
      } else {
        static_cast<bf16 *>(y)[i] = to_bf(acc[c]);
      }
    }
  }
}

bool gemv_pipe() {
  return fg_knob_int(FG_KNOB_GEMV_PIPE);
}

// Which kernel takes one-token GEMMs of narrow outputs (N < 8192: o, down): FASTGEN_GEMV_NARROW.
int gemv_narrow() {
  static const int k = fg_knob_int(FG_KNOB_GEMV_NARROW);
  return k;
}

// M = 1.
void launch_gemv(const bf16 *x, const bf16 *w, void *y, bool y_f32, bool acc, int N, int K,
                 cudaStream_t s) {
  const dim3 blocks(ceil_div(N, 8));
  const float *none = nullptr;
  const RmsRows no_rms;
  if (N < 8192 && gemv_narrow() == 2) {
    gemv_small(x, w, y, y_f32, acc, 1, N, K, s);
    return;
  }
  if (N >= 8192 || gemv_narrow() == 1) {
    if (y_f32 && acc) launch_k(gemv2_kernel<true, true>, blocks, dim3(128), 0, s, x, w, y, N, K, none, no_rms);
    else if (y_f32) launch_k(gemv2_kernel<true, false>, blocks, dim3(128), 0, s, x, w, y, N, K, none, no_rms);
    else launch_k(gemv2_kernel<false, false>, blocks, dim3(128), 0, s, x, w, y, N, K, none, no_rms);
    return;
  }
  if (gemv_pipe()) {
    if (y_f32 && acc) launch_k(gemv_pipe_kernel<true, true>, blocks, dim3(256), 0, s, x, w, y, N, K, no_rms);
    else if (y_f32) launch_k(gemv_pipe_kernel<true, false>, blocks, dim3(256), 0, s, x, w, y, N, K, no_rms);
    else launch_k(gemv_pipe_kernel<false, false>, blocks, dim3(256), 0, s, x, w, y, N, K, no_rms);
    return;
  }
  if (y_f32 && acc) launch_k(gemv_kernel<true, true>, blocks, dim3(256), 0, s, x, w, y, N, K, no_rms);
  else if (y_f32) launch_k(gemv_kernel<true, false>, blocks, dim3(256), 0, s, x, w, y, N, K, no_rms);
  else launch_k(gemv_kernel<false, false>, blocks, dim3(256), 0, s, x, w, y, N, K, no_rms);
}

// M = 1, x as an RMSNorm row, bf16 y: the kernel launch_gemv picks for the shape, folded (the
// same sums in the same order: bit-identical to norm_rows + launch_gemv).
void launch_gemv_rms(const RmsRows &r, const bf16 *w, bf16 *y, int N, int K, cudaStream_t s) {
  const dim3 blocks(ceil_div(N, 8));
  const size_t smem = (size_t)K * 2;
  const bf16 *x = nullptr;
  if (N >= 8192) launch_k(gemv2_kernel<false, false, -1, true>, blocks, dim3(128), smem, s, x, w, (void *)y, N, K, (const float *)nullptr, r);
  else if (gemv_pipe()) launch_k(gemv_pipe_kernel<false, false, true>, blocks, dim3(256), smem, s, x, w, (void *)y, N, K, r);
  else launch_k(gemv_kernel<false, false, true>, blocks, dim3(256), smem, s, x, w, (void *)y, N, K, r);
}

template <int ACT, bool FOLD, bool DEFER = false>
void launch_gated(const bf16 *x, const RmsRows &r, const bf16 *w, const float *bias, bf16 *y, int N, int K,
                  cudaStream_t s) {
  launch_k(gemv2_kernel<false, false, ACT, FOLD, DEFER>, dim3(ceil_div(N, 8)), dim3(128), FOLD ? (size_t)K * 2 : 0, s,
           x, w, (void *)y, N, K, bias, r);
}
template <bool FOLD, bool DEFER = false>
void launch_gated_act(int act, const bf16 *x, const RmsRows &r, const bf16 *w, const float *bias, bf16 *y, int N,
                      int K, cudaStream_t s) {
  if (act == 0) launch_gated<0, FOLD, DEFER>(x, r, w, bias, y, N, K, s);
  else if (act == 1) launch_gated<1, FOLD, DEFER>(x, r, w, bias, y, N, K, s);
  else launch_gated<2, FOLD, DEFER>(x, r, w, bias, y, N, K, s);
}

}  // namespace

// FASTGEN_GEMV=0: none; else FASTGEN_GEMV_MAX_M (1: the one-token kernel only), at most 16.
int gemv_max_m() {
  if (!fg_knob_int(FG_KNOB_GEMV)) return 0;
  const int m = fg_knob_int(FG_KNOB_GEMV_MAX_M);
  return m < 0 ? 0 : m > kGemvMaxM ? kGemvMaxM : m;
}
// FASTGEN_GEMV_SMALL_AT_1=1: one-token GEMMs through the small-M kernel too, whose arithmetic for
// a row does not depend on how many rows come with it (each 8-token column of its MMAs is summed
// alone, in one k order): with FASTGEN_ATTN=simple (one warp per token and head, keys in order)
// and FASTGEN_GEMV_MAX_M=16, a token's logits are then the same in a decode step and in a
// verification pass of up to 16 tokens, which is what speculative decoding's bit-identical outputs need on the GPU.
bool gemv_small_at_1() {
  static const bool v = fg_knob_int(FG_KNOB_GEMV_SMALL_AT_1) != 0;
  return v;
}
bool gemv_one_token() { return gemv_max_m() >= 1 && !gemv_small_at_1(); }
bool gemm_small_takes(int M, int K) { return M >= 1 && M <= gemv_max_m() && K % 8 == 0 && (M > 1 || gemv_small_at_1()); }
// Whether gemm() and gemv_gated() send one row to the CUDA-core one-token kernels.
static bool gemm_one_row_takes(int M, int K) { return M == 1 && gemv_one_token() && K % 8 == 0; }
uint64_t gemm_workspace_bytes() { return kWorkspaceBytes; }
LtContext gemm_lt(Gemm *g) { return {&g->api, g->handle, g->workspace, kWorkspaceBytes}; }

int gemm_create(Gemm **out, char *err) {
  *out = nullptr;
  Gemm *g = new Gemm();
  int rc = open_api(g->api, err);
  if (!rc && g->api.create(&g->handle) != 0) {
    snprintf(err, 512, "cublasLtCreate failed");
    rc = FG_ERR_DEVICE;
  }
  if (!rc) {
    cudaError_t e = cudaMalloc(&g->workspace, kWorkspaceBytes);
    if (e != cudaSuccess) {
      snprintf(err, 512, "cuBLASLt workspace (%llu MiB): %s", (unsigned long long)(kWorkspaceBytes >> 20),
               cudaGetErrorString(e));
      rc = e == cudaErrorMemoryAllocation ? FG_ERR_OUT_OF_MEMORY : FG_ERR_DEVICE;
    }
  }
  if (rc) {
    gemm_destroy(g);
    return rc;
  }
  *out = g;
  return 0;
}

void gemm_destroy(Gemm *g) {
  if (!g) return;
  if (g->api.lib) {
    for (Plan &p : g->plans)
      if (p.used) release_plan(g->api, p);
    if (g->handle) g->api.destroy(g->handle);
  }
  cudaFree(g->workspace);
  // The library stays loaded: cuBLASLt registers process-wide state (dlclose is unsafe).
  delete g;
}

int gemm(Gemm *g, const bf16 *x, const bf16 *w, void *y, bool y_f32, bool accumulate, int M, int N,
         int K, cudaStream_t stream, char *err) {
  if (M <= 0 || N <= 0) return 0;
  if (accumulate && !y_f32) {
    snprintf(err, 512, "gemm: accumulate needs an fp32 output");
    return FG_ERR_INTERNAL;
  }
  if (gemm_small_takes(M, K)) {
    gemv_small(x, w, y, y_f32, accumulate, M, N, K, stream);
    FGCU_LAUNCHED("gemv_small");
    return 0;
  }
  if (gemm_one_row_takes(M, K)) {
    launch_gemv(x, w, y, y_f32, accumulate, N, K, stream);
    FGCU_LAUNCHED("gemv");
    return 0;
  }
  return gemm_cublaslt(g, x, w, y, y_f32, accumulate, M, N, K, stream, err);
}

int gemm_cublaslt(Gemm *g, const bf16 *x, const bf16 *w, void *y, bool y_f32, bool accumulate, int M,
                  int N, int K, cudaStream_t stream, char *err) {
  if (M <= 0 || N <= 0) return 0;
  if (accumulate && !y_f32) {
    snprintf(err, 512, "gemm: accumulate needs an fp32 output");
    return FG_ERR_INTERNAL;
  }
  Plan *plan = nullptr;
  for (Plan &p : g->plans)
    if (p.used && p.M == M && p.N == N && p.K == K && p.y_f32 == y_f32 && p.acc == accumulate) {
      plan = &p;
      break;
    }
  if (!plan) {
    for (Plan &p : g->plans)
      if (!p.used) {
        plan = &p;
        break;
      }
    if (!plan) {  // full: evict round-robin
      plan = &g->plans[g->next_victim];
      g->next_victim = (g->next_victim + 1) % kCacheSize;
      release_plan(g->api, *plan);
    }
    FGCU_CHECK(make_plan(g, *plan, M, N, K, y_f32, accumulate, err));
  }
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  cublasStatus_t st = g->api.matmul(g->handle, plan->desc, &alpha, w, plan->a, x, plan->b, &beta, y,
                                    plan->c, y, plan->c, &plan->algo, g->workspace, kWorkspaceBytes,
                                    stream);
  if (st != 0) {
    snprintf(err, 512, "cublasLtMatmul failed (status %d) for M=%d N=%d K=%d", st, M, N, K);
    return FG_ERR_DEVICE;
  }
  return 0;
}

bool gemv_gated(const bf16 *x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N,
                int K, cudaStream_t stream) {
  if (N % 2 != 0 || act < 0 || act > 2) return false;
  if (gemm_small_takes(M, K)) gemv_small_gated(x, w, bias, act, y, M, N, K, stream);
  else if (gemm_one_row_takes(M, K)) launch_gated_act<false>(act, x, RmsRows(), w, bias, y, N, K, stream);
  else return false;
  return true;
}

// FASTGEN_NORM_FOLD: the most tokens folded (0: off), at most what the GEMVs take.
int norm_fold_max_m() {
  const int m = fg_knob_int(FG_KNOB_NORM_FOLD);
  return m < 0 ? 0 : m;
}

// Shared memory for x: one row in the one-token kernels (under the 48 KB a launch gets by
// default), M padded rows in the small-M kernel (gemv_small.cu).
bool gemv_rms_fits(int M, int K) {
  if (M < 1 || M > norm_fold_max_m() || M > gemv_max_m() || K % 8 != 0) return false;
  if (M == 1 && !gemv_small_at_1()) return K * 2 <= 48 * 1024 - 64;
  return gemv_small_rms_fits(M, K);
}

int gemv_rms(const RmsRows &x, const bf16 *w, bf16 *y, int M, int N, int K, cudaStream_t stream, char *err) {
  if (N <= 0) return 0;
  if (!gemv_rms_fits(M, K)) {
    snprintf(err, 512, "gemv_rms: %d rows of width %d do not fold", M, K);
    return FG_ERR_INTERNAL;
  }
  if (M == 1 && !gemv_small_at_1()) launch_gemv_rms(x, w, y, N, K, stream);
  else gemv_small_rms(x, w, y, M, N, K, stream);
  FGCU_LAUNCHED("gemv_rms");
  return 0;
}

// FASTGEN_NORM_DEFER, at most 16; 0 under FASTGEN_GEMV_SMALL_AT_1, whose batch invariance a
// deferred norm at some pass sizes and not others would break.
int norm_defer_max_m() {
  static const int m = [] {
    const int v = fg_knob_int(FG_KNOB_NORM_DEFER);
    return gemv_small_at_1() || v < 0 ? 0 : v > kGemvMaxM ? kGemvMaxM : v;
  }();
  return m;
}

// FASTGEN_NORM_DEFER: one-token GEMVs take the RMSNorm with its scale deferred (gemv2.cuh).
bool gemv_rms_deferred_takes(int M, int K) { return norm_defer_max_m() >= 1 && gemm_one_row_takes(M, K); }

int gemv_rms_deferred(const RmsRows &x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N, int K,
                      cudaStream_t stream, char *err) {
  if (N <= 0) return 0;
  if (!gemv_rms_deferred_takes(M, K) || (act >= 0 && (N % 2 != 0 || act > 2))) {
    snprintf(err, 512, "gemv_rms_deferred: %d rows of width %d (N %d, act %d) do not take the deferred norm", M, K, N, act);
    return FG_ERR_INTERNAL;
  }
  if (act >= 0) launch_gated_act<false, true>(act, nullptr, x, w, bias, y, N, K, stream);
  else launch_k(gemv2_kernel<false, false, -1, false, true>, dim3(ceil_div(N, 8)), dim3(128), 0, stream,
                (const bf16 *)nullptr, w, (void *)y, N, K, (const float *)nullptr, x);
  FGCU_LAUNCHED("gemv_rms_deferred");
  return 0;
}

int gemv_rms_gated(const RmsRows &x, const bf16 *w, const float *bias, int act, bf16 *y, int M, int N, int K,
                   cudaStream_t stream, char *err) {
  if (!gemv_rms_fits(M, K) || N % 2 != 0 || act < 0 || act > 2) {
    snprintf(err, 512, "gemv_rms_gated: %d rows of width %d (N %d, act %d) do not fold", M, K, N, act);
    return FG_ERR_INTERNAL;
  }
  if (M > 1 || gemv_small_at_1()) gemv_small_rms_gated(x, w, bias, act, y, M, N, K, stream);
  else launch_gated_act<true>(act, nullptr, x, w, bias, y, N, K, stream);
  FGCU_LAUNCHED("gemv_rms_gated");
  return 0;
}

}  // namespace fgcu
