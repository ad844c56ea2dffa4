// FP8 GEMMs (fp8_gemm.cuh): the choice of path, the activation quantization, the W8A8 cuBLASLt
// plans and their one-time probe, and the dequantize fallback.
//
// cuBLASLt terms as in gemm.cu: row-major y[M, N] = x[M, K] · w[N, K]^T is, column-major,
//   y^T (N x M, ld N) = op_T(A = w as K x N, ld K) · (B = xq^T as K x M, ld K)      ("TN": FP8's
// only layout). With outer-vector scales A's scale has one entry per row of op(A) (the weight's
// N channel scales) and B's one per column of op(B) (the M token scales):
//   D[n, m] = sa[n] * sb[m] * sum_k a[n, k] b[k, m]  (+ beta C)
#include <string.h>

#include "cuda/fp8_gemm.cuh"
#include "cuda/fp8_gemv.cuh"

namespace fgcu {
namespace {

constexpr int kCacheSize = 256;

// One planned shape: descriptors and the heuristic's algorithm; bad: cuBLASLt has none (the
// shape takes the fallback from then on).
struct Plan {
  int M = 0, N = 0, K = 0;
  bool y_f32 = false, acc = false, used = false, bad = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo;
};

}  // namespace

struct Fp8Gemm {
  Gemm *gemm = nullptr;
  LtContext lt{};
  Plan plans[kCacheSize];
  int next_victim = 0;
  DevBuf xq;   // E4M3 [M, K]: the activations of the GEMM in flight
  DevBuf xs;   // fp32 [M]: their scales
  DevBuf wdq;  // bf16 [N, K]: the fallback's dequantized weight
  bool probed = false;
  bool lt_ok[2] = {false, false};  // the probe passed, for bf16 [0] and fp32 [1] outputs
};

namespace {

// xq[m] = e4m3(x[m] / s_m) saturated to +-448, xs[m] = s_m: static_scale, or (0) the row's
// amax / 448. One block of 256 threads per row; K % 8 == 0.
__global__ void __launch_bounds__(256) quantize_rows_kernel(const bf16 *__restrict__ x, int K, float static_scale,
                                                            uint8_t *__restrict__ xq, float *__restrict__ xs) {
  __shared__ float scratch[32];
  pdl_wait();
  pdl_launch_dependents();
  const size_t m = blockIdx.x;
  const bf16 *row = x + m * K;
  float scale = static_scale;
  if (!(scale > 0.f)) {
    float amax = 0.f;
    for (int i = threadIdx.x * 8; i < K; i += blockDim.x * 8) {
      float v[8];
      load8(row + i, v);
#pragma unroll
      for (int j = 0; j < 8; j++) amax = fmaxf(amax, fabsf(v[j]));
    }
    scale = fmaxf(block_max(amax, scratch) / 448.f, kMinTokenScale);
  }
  const float inv = 1.f / scale;
  uint8_t *out = xq + m * K;
  for (int i = threadIdx.x * 8; i < K; i += blockDim.x * 8) {
    float v[8];
    load8(row + i, v);
    uint32_t h[4];
#pragma unroll
    for (int j = 0; j < 4; j++)
      h[j] = __nv_cvt_float2_to_fp8x2(make_float2(v[2 * j] * inv, v[2 * j + 1] * inv), __NV_SATFINITE, __NV_E4M3);
    *reinterpret_cast<uint2 *>(out + i) = make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16));
  }
  if (threadIdx.x == 0) xs[m] = scale;
}

// out [N, K] bf16 = the weight w means (weight.cuh), 16 values a thread per step. K % 16 == 0.
__global__ void dequantize_kernel(const uint8_t *__restrict__ w, const float *__restrict__ scales, int kblock, int nkb,
                                  int K, size_t chunks, bf16 *__restrict__ out) {
  for (size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x; c < chunks; c += (size_t)gridDim.x * blockDim.x) {
    const size_t e = c * 16, n = e / K, k = e % K;
    float f[16];
    e4m3x16(*reinterpret_cast<const uint4 *>(w + e), f);
    const float s = scales[n * nkb + k / kblock];
#pragma unroll
    for (int i = 0; i < 16; i++) f[i] *= s;
    store8(out + e, f);
    store8(out + e + 8, f + 8);
  }
}

void release_plan(const LtApi &api, Plan &p) {
  if (p.desc) api.desc_destroy(p.desc);
  if (p.a) api.layout_destroy(p.a);
  if (p.b) api.layout_destroy(p.b);
  if (p.c) api.layout_destroy(p.c);
  p = Plan();
}

// Fills p for the shape; p.bad when cuBLASLt refuses it (no error: the caller falls back).
// Fast accumulation first (FASTGEN_FP8_FAST_ACCUM), then without, should no algorithm take it.
void make_plan(Fp8Gemm *f, Plan &p, int M, int N, int K, bool y_f32, bool acc) {
  const LtApi &api = *f->lt.api;
  const bool fast_first = fg_knob_int(FG_KNOB_FP8_FAST_ACCUM) != 0;
  for (int attempt = fast_first ? 0 : 1; attempt < 2; attempt++) {
    release_plan(api, p);
    p.M = M, p.N = N, p.K = K, p.y_f32 = y_f32, p.acc = acc, p.used = true, p.bad = true;
    const cudaDataType_t ytype = y_f32 ? CUDA_R_32F : CUDA_R_16BF;
    const int op_t = FG_CUBLAS_OP_T, op_n = FG_CUBLAS_OP_N;
    const int32_t outer = FG_CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    const int8_t fast = attempt == 0 ? 1 : 0;
    const void *any = f->lt.workspace;  // scale pointers are set per call; a device address meanwhile
    cublasStatus_t st = api.desc_create(&p.desc, FG_CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_TRANSA, &op_t, sizeof op_t);
    if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_TRANSB, &op_n, sizeof op_n);
    if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &outer, sizeof outer);
    if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &outer, sizeof outer);
    if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &any, sizeof any);
    if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &any, sizeof any);
    if (!st) st = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast);
    if (!st) st = api.layout_create(&p.a, CUDA_R_8F_E4M3, K, N, K);
    if (!st) st = api.layout_create(&p.b, CUDA_R_8F_E4M3, K, M, K);
    if (!st) st = api.layout_create(&p.c, ytype, N, M, N);
    cublasLtMatmulPreference_t pref = nullptr;
    if (!st) st = api.pref_create(&pref);
    const uint64_t ws = f->lt.workspace_bytes;
    if (!st) st = api.pref_set(pref, FG_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulHeuristicResult_t res;
    memset(&res, 0, sizeof res);
    int found = 0;
    if (!st) st = api.heuristic(f->lt.handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
    if (pref) api.pref_destroy(pref);
    if (!st && found >= 1) {
      p.algo = res.algo;
      p.bad = false;
      return;
    }
  }
  // none: keep the shape, marked bad, so the heuristic is not asked every step
  release_plan(api, p);
  p.M = M, p.N = N, p.K = K, p.y_f32 = y_f32, p.acc = acc, p.used = true, p.bad = true;
}

Plan &plan_for(Fp8Gemm *f, int M, int N, int K, bool y_f32, bool acc) {
  for (Plan &p : f->plans)
    if (p.used && p.M == M && p.N == N && p.K == K && p.y_f32 == y_f32 && p.acc == acc) return p;
  Plan *slot = nullptr;
  for (Plan &p : f->plans)
    if (!p.used) {
      slot = &p;
      break;
    }
  if (!slot) {  // full: evict round-robin
    slot = &f->plans[f->next_victim];
    f->next_victim = (f->next_victim + 1) % kCacheSize;
    release_plan(*f->lt.api, *slot);
  }
  make_plan(f, *slot, M, N, K, y_f32, acc);
  return *slot;
}

// y = (xq · w^T) scaled by w.scales [N] and xs [M] (+ y when p.acc), on cuBLASLt.
int lt_matmul(Fp8Gemm *f, Plan &p, const uint8_t *xq, const float *xs, const Weight &w, void *y, cudaStream_t st,
              char *err) {
  const LtApi &api = *f->lt.api;
  const void *sa = w.scales, *sb = xs;
  cublasStatus_t s = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa);
  if (!s) s = api.desc_set(p.desc, FG_CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb);
  const float alpha = 1.f, beta = p.acc ? 1.f : 0.f;
  if (!s)
    s = api.matmul(f->lt.handle, p.desc, &alpha, w.p, p.a, xq, p.b, &beta, y, p.c, y, p.c, &p.algo,
                   f->lt.workspace, f->lt.workspace_bytes, st);
  if (s != 0) {
    snprintf(err, 512, "cublasLtMatmul (FP8) failed (status %d) for M=%d N=%d K=%d", s, p.M, p.N, p.K);
    return FG_ERR_DEVICE;
  }
  return 0;
}

bool lt_usable(const Fp8Gemm *f, bool y_f32) { return f->lt_ok[y_f32] && fg_knob_int(FG_KNOB_FP8_LT); }

// The GEMV takes up to fp8_gemv_max_m() rows, and up to its 8 for K-segment scales (which have
// no cuBLASLt path: the fallback moves 5 bytes per weight).
bool gemv_takes(const Weight &w, int M, int K) {
  return M >= 1 && (M <= fp8_gemv_max_m() || (w.nkb(K) > 1 && M <= kFp8GemvMaxRows));
}

// The probe's check of one output: D[m, n] = base + K * sa[n] * sb[m].
bool probe_matches(const float *y, int M, int N, int K, float base, const float *sa, const float *sb) {
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      const float want = base + K * sa[n] * sb[m];
      if (!(fabsf(y[(size_t)m * N + n] - want) <= 1e-2f * fabsf(want))) return false;
    }
  return true;
}

}  // namespace

int fp8_gemm_create(Gemm *g, Fp8Gemm **out, char *err) {
  (void)err;
  Fp8Gemm *f = new Fp8Gemm();
  f->gemm = g;
  f->lt = gemm_lt(g);
  *out = f;
  return 0;
}

void fp8_gemm_destroy(Fp8Gemm *f) {
  if (!f) return;
  for (Plan &p : f->plans)
    if (p.used) release_plan(*f->lt.api, p);
  release(f->xq);
  release(f->xs);
  release(f->wdq);
  delete f;
}

int fp8_probe(Fp8Gemm *f, cudaStream_t st, char *err) {
  if (f->probed) return 0;
  f->probed = true;
  f->lt_ok[0] = f->lt_ok[1] = false;
  // w = 1.0 everywhere (E4M3 0x38), x = 1.0: D[m, n] = K sa[n] sb[m], with scales that tell
  // rows from columns apart; bf16 out, then fp32 out accumulating onto 1.0.
  constexpr int M = 32, N = 64, K = 64;
  float sa[N], sb[M], y[M * N];
  for (int n = 0; n < N; n++) sa[n] = 1.f + n / 64.f;
  for (int m = 0; m < M; m++) sb[m] = 0.5f + m / 32.f;
  char *buf = nullptr;
  // every operand 256-byte aligned, as cuBLASLt's heuristic assumes by default
  const size_t off_b = N * K, off_sa = off_b + M * K, off_sb = off_sa + 256, off_y = off_sb + 256;
  const char *why = nullptr;
  if (cudaMalloc(&buf, off_y + M * N * 4) != cudaSuccess) why = "no device memory for the probe";
  if (!why) {
    cudaMemsetAsync(buf, 0x38, off_sa, st);
    cudaMemcpyAsync(buf + off_sa, sa, sizeof sa, cudaMemcpyHostToDevice, st);
    cudaMemcpyAsync(buf + off_sb, sb, sizeof sb, cudaMemcpyHostToDevice, st);
    Weight w;
    w.p = buf, w.dtype = kWeightFp8, w.kblock = K, w.scales = (float *)(buf + off_sa);
    char lt_err[2][512] = {"", ""};
    const char *fail[2] = {nullptr, nullptr};  // why each output type has no W8A8 path
    for (int pass = 0; pass < 2; pass++) {
      const bool f32 = pass == 1;
      const char *&bad = fail[pass];
      Plan &p = plan_for(f, M, N, K, f32, f32);
      if (p.bad) {
        bad = "no cuBLASLt algorithm for E4M3 x E4M3 with outer-vector scales";
        continue;
      }
      if (f32) {
        for (int i = 0; i < M * N; i++) y[i] = 1.f;
        cudaMemcpyAsync(buf + off_y, y, sizeof y, cudaMemcpyHostToDevice, st);
      }
      if (lt_matmul(f, p, (const uint8_t *)buf + off_b, (const float *)(buf + off_sb), w, buf + off_y, st, lt_err[pass])) {
        bad = lt_err[pass];
        continue;
      }
      if (f32) {
        cudaMemcpyAsync(y, buf + off_y, sizeof y, cudaMemcpyDeviceToHost, st);
      } else {
        uint16_t h[M * N];
        cudaMemcpyAsync(h, buf + off_y, sizeof h, cudaMemcpyDeviceToHost, st);
        cudaStreamSynchronize(st);
        for (int i = 0; i < M * N; i++) {
          const uint32_t u = (uint32_t)h[i] << 16;
          memcpy(&y[i], &u, 4);
        }
      }
      if (cudaStreamSynchronize(st) != cudaSuccess) bad = "the probe's GEMM failed on the device";
      else if (!probe_matches(y, M, N, K, f32 ? 1.f : 0.f, sa, sb)) bad = "the probe's GEMM gave wrong numbers";
      f->lt_ok[pass] = bad == nullptr;
      cudaGetLastError();
    }
    for (int pass = 0; pass < 2; pass++)
      if (fail[pass])
        fprintf(stderr, "fastgen: FP8 W8A8 on cuBLASLt is off for %s outputs (%s): FP8 GEMMs of more than %d rows "
                        "dequantize the weight to bf16 instead\n", pass ? "fp32" : "bf16", fail[pass], fp8_gemv_max_m());
  }
  cudaStreamSynchronize(st);
  cudaFree(buf);
  cudaGetLastError();
  if (why)
    fprintf(stderr, "fastgen: FP8 W8A8 on cuBLASLt is off (%s): FP8 GEMMs of more than %d rows dequantize the "
                    "weight to bf16 instead\n", why, fp8_gemv_max_m());
  (void)err;
  return 0;
}

bool fp8_lt_ok(const Fp8Gemm *f, bool y_f32) { return lt_usable(f, y_f32); }

int fp8_reserve(Fp8Gemm *f, int M, int K, size_t dequant_elems, char *err) {
  FGCU_CHECK(ensure(f->xq, (size_t)M * K, "FP8 activations", err));
  FGCU_CHECK(ensure(f->xs, (size_t)M * 4, "FP8 activations", err));
  if (dequant_elems) FGCU_CHECK(ensure(f->wdq, dequant_elems * 2, "the FP8 dequantize scratch", err));
  return 0;
}

uint64_t fp8_workspace_key(const Fp8Gemm *f) {
  if (!f) return 0;
  return (uint64_t)(uintptr_t)f->xq.p ^ ((uint64_t)(uintptr_t)f->xs.p << 1) ^ ((uint64_t)(uintptr_t)f->wdq.p << 2);
}

namespace {

// FASTGEN_FP8_GEMV_MAX_M's default (-1): the CUDA-core GEMV takes one row on GPUs whose peak
// memory bandwidth (2 x memory clock x bus width) is at least 4 TB/s, the small-M kernel below.
// The data behind it: on H100s (3.35 TB/s) the small-M kernel at one row decoded the 7B shape in
// 3.18-3.22 ms against 3.34-4.21 for the GEMV (bench/results/device-wave12-h100.md); on an H200
// (4.8 TB/s) the GEMV at one row took 2.78 ms against 2.91 for the small-M kernel at two rows,
// and at 70B 19.2 against 23-24.5 ms (device-wave9b-h200.md, device-wave10-h200.md). A likely
// reason, not measured: the GEMV keeps more bytes in flight a SM (8 loads of 16 bytes a lane),
// which the faster memory needs. The H200 side of this rule has not run yet.
int auto_gemv_rows() {
  static int known[32];  // rows + 1 per device; 0: not looked up yet
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 0;
  int &k = known[dev & 31];
  const int cached = __atomic_load_n(&k, __ATOMIC_ACQUIRE);
  if (cached) return cached - 1;
  int clock_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, dev);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev);
  cudaGetLastError();  // a missing attribute leaves the small-M kernel in charge, not an error
  const double peak = 2.0 * clock_khz * 1e3 * bus_bits / 8;
  const int rows = peak >= 4e12 ? 1 : 0;
  __atomic_store_n(&k, rows + 1, __ATOMIC_RELEASE);
  return rows;
}

}  // namespace

int fp8_gemv_max_m() {
  int m = fg_knob_int(FG_KNOB_FP8_GEMV_MAX_M);
  if (m < 0) m = auto_gemv_rows();
  return m > kFp8GemvMaxRows ? kFp8GemvMaxRows : m;
}

int fp8_small_max_m() {
  const int m = fg_knob_int(FG_KNOB_FP8_SMALL_MAX_M);
  return m < 0 ? 0 : m > kFp8SmallMaxRows ? kFp8SmallMaxRows : m;
}

// The tensor-core small-M kernel takes the rows above the GEMV's, up to fp8_small_max_m() (any scales).
bool fp8_small_takes(int M) { return M >= 1 && M > fp8_gemv_max_m() && M <= fp8_small_max_m(); }

int fp8_path(const Fp8Gemm *f, const Weight &w, int M, int N, int K, bool y_f32) {
  if (fp8_small_takes(M)) return kFp8Small;
  if (gemv_takes(w, M, K)) return kFp8Gemv;
  if (!w.weight_only && w.nkb(K) == 1 && lt_usable(f, y_f32) && N % 16 == 0 && K % 16 == 0) return kFp8Lt;
  return kFp8Dequant;
}

int fp8_linear(Fp8Gemm *f, const bf16 *x, const Weight &w, void *y, bool y_f32, bool accumulate, int M, int N,
               int K, cudaStream_t st, char *err, int path) {
  if (M <= 0 || N <= 0) return 0;
  if ((accumulate && !y_f32) || !w.fp8() || K % 16 != 0 || !w.scales) {
    snprintf(err, 512, "fp8_linear: needs an FP8 weight with K %% 16 == 0 (K=%d) and an fp32 output to accumulate", K);
    return FG_ERR_INTERNAL;
  }
  const bool forced = path != kFp8Auto;
  if (!forced) path = fp8_path(f, w, M, N, K, y_f32);
  if (path == kFp8Gemv) {
    if (M > kFp8GemvMaxRows) {
      snprintf(err, 512, "fp8_linear: the GEMV takes at most %d rows, got %d", kFp8GemvMaxRows, M);
      return FG_ERR_INVALID_ARGUMENT;
    }
    fp8_gemv_launch(x, w, y, y_f32, accumulate, -1, nullptr, M, N, K, st);
    FGCU_LAUNCHED("fp8 gemv");
    return 0;
  }
  if (path == kFp8Small) {
    if (M > kFp8SmallMaxRows) {
      snprintf(err, 512, "fp8_linear: the small-M kernel takes at most %d rows, got %d", kFp8SmallMaxRows, M);
      return FG_ERR_INVALID_ARGUMENT;
    }
    fp8_gemv_small(x, w, y, y_f32, accumulate, -1, nullptr, M, N, K, st);
    FGCU_LAUNCHED("fp8 gemv_small");
    return 0;
  }
  if (path == kFp8Lt) {
    Plan *p = nullptr;
    if (w.nkb(K) == 1 && f->lt_ok[y_f32] && N % 16 == 0) p = &plan_for(f, M, N, K, y_f32, accumulate);
    if (p && !p->bad) {
      FGCU_CHECK(fp8_reserve(f, M, K, 0, err));  // a no-op where ensure_workspaces reserved it
      uint8_t *xq = (uint8_t *)f->xq.p;
      float *xs = (float *)f->xs.p;
      launch_k(quantize_rows_kernel, dim3(M), dim3(256), 0, st, x, K, w.input_scale, xq, xs);
      FGCU_LAUNCHED("fp8 quantize_rows_kernel");
      return lt_matmul(f, *p, xq, xs, w, y, st, err);
    }
    if (forced) {
      snprintf(err, 512, "fp8_linear: no W8A8 cuBLASLt path for M=%d N=%d K=%d (%s)", M, N, K,
               w.nkb(K) > 1 ? "K-segment scales" : f->lt_ok[y_f32] ? "no algorithm" : "the probe failed");
      return FG_ERR_INVALID_ARGUMENT;
    }
  }
  // The fallback: w dequantized to bf16, then cuBLASLt bf16 (weight-only).
  FGCU_CHECK(ensure(f->wdq, (size_t)N * K * 2, "the FP8 dequantize scratch", err));
  bf16 *wdq = (bf16 *)f->wdq.p;
  const size_t chunks = (size_t)N * K / 16;
  const int blocks = (int)(chunks / 256 < 4096 ? chunks / 256 + 1 : 4096);
  dequantize_kernel<<<blocks, 256, 0, st>>>((const uint8_t *)w.p, w.scales, w.kblock, w.nkb(K), K, chunks, wdq);
  FGCU_LAUNCHED("fp8 dequantize_kernel");
  return gemm(f->gemm, x, wdq, y, y_f32, accumulate, M, N, K, st, err);
}

bool fp8_gemv_gated(const bf16 *x, const Weight &w, const float *bias, int act, bf16 *y, int M, int N, int K,
                    cudaStream_t st) {
  if (!w.fp8() || K % 16 != 0 || N % 2 != 0 || act < 0 || act > 2) return false;
  if (fp8_small_takes(M)) fp8_gemv_small(x, w, y, false, false, act, bias, M, N, K, st);
  else if (gemv_takes(w, M, K)) fp8_gemv_launch(x, w, y, false, false, act, bias, M, N, K, st);
  else return false;
  return true;
}

}  // namespace fgcu
