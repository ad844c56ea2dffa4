// Test hooks (fastgen.h: fg_paged_attention(_fp8), fg_mla_attention(_fp8), fg_sample_logits with
// FG_BACKEND_CUDA, fg_cuda_rmsnorm_host, fg_cuda_gemm_host, fg_cuda_fp8_linear_host): one stage of
// fg_step on host buffers, so test/gpu can hold each against its CPU twin (and bench/gpu time one
// GEMM alone). fg_run_op's ops are op_hooks.cu.
#include "cuda/attention_hopper.cuh"
#include "cuda/fp8_gemm.cuh"
#include "cuda/gemm.cuh"
#include "cuda/hook_staging.cuh"
#include "cuda/kv_fp8.cuh"
#include "cuda/norm.cuh"

using namespace fgcu;

namespace {

// An FP8 cache for the attention hooks: x [n] fp32 stored as e4m3(x / scale) by the cache's own
// encoder (kv_fp8.cuh, as the RoPE and MLA kernels write it).
__global__ void kv_encode_kernel(const float *x, e4m3 *q, size_t n, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    kv_store(q + i, x[i], scale);
}

// The cache of host values h [n] on the device: bf16 (rounded), or (fp8) E4M3 bytes as above,
// returned typed bf16 as the kernels' arguments take either. Null when an allocation failed.
bf16 *hook_cache(Scope &sc, const float *h, size_t n, bool fp8, float scale) {
  if (!fp8) return sc.bf(h, n);
  const float *x = sc.f32(h, n);
  e4m3 *q = (e4m3 *)sc.dalloc(n);
  if (!x || !q) return nullptr;
  const size_t blocks = (n + 255) / 256;
  kv_encode_kernel<<<(unsigned)(blocks < 1 ? 1 : blocks > 4096 ? 4096 : blocks), 256, 0, sc.stream>>>(x, q, n, scale);
  return (bf16 *)q;
}

// Reads `bytes` of `buf` (16-byte loads; a sum no one reads, kept by the store it may make): the L2
// flush of the timing hooks. Reading, not writing: a memset left L2 full of dirty lines, whose
// write-backs the timed kernel then paid for while evicting them (the kernels' tables overstated
// their time by up to one write-back per byte read). The buffer is twice the L2 size.
__global__ void l2_flush_kernel(const uint4 *buf, size_t n, unsigned *sink) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const uint4 v = buf[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;  // practically never; keeps the loads
}

int flush_l2(void *buf, size_t bytes, cudaStream_t st, char *err) {
  // the sink is the buffer's own first word: its contents never matter
  l2_flush_kernel<<<1024, 256, 0, st>>>((const uint4 *)buf, bytes / 16, (unsigned *)buf);
  FGCU_TRY(cudaGetLastError());
  return 0;
}

// Device time of 20 runs of launch() (an int-returning status), each alone between two events,
// sorted ascending into t; before() runs ahead of each (an L2 flush, or nothing), and `untimed`
// runs go first (cuBLASLt plans on its first call).
template <typename F, typename B>
int time_launches(cudaStream_t st, F launch, B before, int untimed, float (&t)[20], char *err) {
  cudaEvent_t t0, t1;
  FGCU_TRY(cudaEventCreate(&t0));
  FGCU_TRY(cudaEventCreate(&t1));
  for (int i = 0; i < 20 + untimed; i++) {
    FGCU_CHECK(before(i));
    FGCU_TRY(cudaEventRecord(t0, st));
    FGCU_CHECK(launch());
    FGCU_TRY(cudaEventRecord(t1, st));
    FGCU_TRY(cudaEventSynchronize(t1));
    if (i >= untimed) FGCU_TRY(cudaEventElapsedTime(&t[i - untimed], t0, t1));
  }
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  for (int i = 1; i < 20; i++)
    for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
      const float v = t[j];
      t[j] = t[j - 1], t[j - 1] = v;
    }
  return 0;
}

// Bench hook: with FASTGEN_ATTN_TIMING=<file>, appends the median device time (ms) of 20 more
// runs of launch() (an int-returning status) to that file.
template <typename F>
int append_timing(cudaStream_t st, F launch, char *err) {
  const char *path = fg_knob_str(FG_KNOB_ATTN_TIMING);
  if (!path[0]) return 0;
  float ms[20];
  FGCU_CHECK(time_launches(st, launch, [](int) { return 0; }, 0, ms, err));
  if (FILE *f = fopen(path, "a")) {
    fprintf(f, "%.5f\n", ms[10]);
    fclose(f);
  }
  return 0;
}

}  // namespace

extern "C" int fgcu_attention_host(const fg_batch *b, const float *q, const float *k_cache,
                                   const float *v_cache, float *out, int32_t nh, int32_t nkv,
                                   int32_t hd, int32_t bs, int32_t nb, int32_t window, float scale,
                                   float softcap, int32_t splits, int32_t kernel, int32_t kv_fp8,
                                   float k_scale, float v_scale, char *err) {
  FGCU_CHECK(need_device(err));
  Scope sc;
  FGCU_TRY(cudaStreamCreateWithFlags(&sc.stream, cudaStreamNonBlocking));
  const int T = b->num_tokens, qn = T * nh * hd;
  const size_t cache_n = (size_t)nb * bs * nkv * hd;
  int sms = 0;
  FGCU_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  Meta m;
  FGCU_CHECK(build_meta(sc.meta, b, nh / nkv, nkv, sms, splits, 0, sc.stream, &m, err));
  // host staging: q (bf16), out; k and v in the CUDA cache layout, as fp32 until the cache's
  // dtype stores them (hook_cache)
  uint16_t *hb = (uint16_t *)sc.halloc((size_t)qn * 2 + 16);
  float *hk = (float *)sc.halloc(cache_n * 4), *hv = (float *)sc.halloc(cache_n * 4);
  if (!hb || !hk || !hv) {
    snprintf(err, 512, "attention hook: host allocation failed");
    return FG_ERR_OUT_OF_MEMORY;
  }
  for (int i = 0; i < qn; i++) hb[i] = to_bf16_bits(q[i]);
  for (int blk = 0; blk < nb; blk++)  // [nb, bs, nkv, hd] -> [nb, nkv, bs, hd]
    for (int s = 0; s < bs; s++)
      for (int h = 0; h < nkv; h++)
        for (int d = 0; d < hd; d++) {
          const size_t src = (((size_t)blk * bs + s) * nkv + h) * hd + d;
          const size_t dst = (((size_t)blk * nkv + h) * bs + s) * hd + d;
          hk[dst] = k_cache[src];
          hv[dst] = v_cache[src];
        }
  bf16 *dq = (bf16 *)sc.dalloc(qn * 2), *dout = (bf16 *)sc.dalloc(qn * 2);
  const bf16 *dk = hook_cache(sc, hk, cache_n, kv_fp8, k_scale), *dv = hook_cache(sc, hv, cache_n, kv_fp8, v_scale);
  float *po = nullptr, *plse = nullptr;
  int *done = nullptr;  // split counters (attn_splits.cuh) under FASTGEN_ATTN_MERGE_IN_KERNEL
  if (m.splits > 1) {
    po = (float *)sc.dalloc((size_t)m.splits * qn * 4);
    plse = (float *)sc.dalloc((size_t)m.splits * T * nh * 4);
    if (attn_merge_in_kernel()) done = (int *)sc.dalloc((size_t)m.num_narrow * nkv * 4);
  }
  if (!dq || !dk || !dv || !dout || (m.splits > 1 && (!po || !plse || (!done && attn_merge_in_kernel())))) {
    snprintf(err, 512, "attention hook: out of device memory");
    return FG_ERR_OUT_OF_MEMORY;
  }
  FGCU_CHECK(sc.status("attention hook", err));
  FGCU_LAUNCHED("kv_encode_kernel");
  FGCU_TRY(cudaMemcpyAsync(dq, hb, qn * 2, cudaMemcpyHostToDevice, sc.stream));
  FGCU_TRY(cudaMemsetAsync(dout, 0xff, qn * 2, sc.stream));  // poison: NaN where nothing writes
  if (done) FGCU_TRY(cudaMemsetAsync(done, 0, (size_t)m.num_narrow * nkv * 4, sc.stream));
  AttnArgs a;
  memset(&a, 0, sizeof a);
  a.q = dq, a.q_stride = nh * hd, a.k_cache = dk, a.v_cache = dv, a.out = dout, a.out_stride = nh * hd;
  a.cu_seqlens = m.cu_seqlens, a.context_lens = m.context_lens, a.block_indptr = m.block_indptr;
  a.block_indices = m.block_indices, a.token_seq = m.token_seq;
  a.wide = m.wide, a.narrow = m.narrow, a.num_wide = m.num_wide, a.num_narrow = m.num_narrow;
  a.splits = m.splits, a.part_o = po, a.part_lse = plse, a.split_done = done;
  a.num_tokens = T, a.num_heads = nh, a.num_kv_heads = nkv, a.head_dim = hd, a.block_size = bs;
  a.window = window, a.scale = scale, a.softcap = softcap, a.wide_kernel = kernel;
  a.kv_fp8 = kv_fp8 != 0, a.k_scale = k_scale, a.v_scale = v_scale;
  if (kernel >= 2 && m.num_wide > 0 && !attn_hopper_takes(a)) {
    snprintf(err, 512, "attention hook: the Hopper kernel does not run head_dim %d%s here (needs sm_90, 128-row tiles, a bf16 cache)",
             hd, a.kv_fp8 ? " with an FP8 cache" : "");
    return FG_ERR_UNSUPPORTED;
  }
  FGCU_CHECK(paged_attention(a, sc.stream, err));
  FGCU_CHECK(append_timing(sc.stream, [&] { return paged_attention(a, sc.stream, err); }, err));
  FGCU_TRY(cudaMemcpyAsync(hb, dout, qn * 2, cudaMemcpyDeviceToHost, sc.stream));
  FGCU_TRY(cudaStreamSynchronize(sc.stream));
  for (int i = 0; i < qn; i++) out[i] = from_bf16_bits(hb[i]);
  return 0;
}

extern "C" int fgcu_sample_host(const fg_batch *b, const float *logits, int32_t V,
                                fg_step_output *out, char *err) {
  FGCU_CHECK(need_device(err));
  Scope sc;
  FGCU_TRY(cudaStreamCreateWithFlags(&sc.stream, cudaStreamNonBlocking));
  Meta m;
  FGCU_CHECK(build_meta(sc.meta, b, 1, 1, 1, 1, V, sc.stream, &m, err));
  if (m.R == 0) return 0;
  const size_t RV = (size_t)m.R * V;
  float *dl = (float *)sc.dalloc(RV * 4), *dz = (float *)sc.dalloc(RV * 4);
  int *dc = (int *)sc.dalloc(RV * 4);
  const size_t out_bytes = (size_t)m.R * (8 + 8 * m.L);
  void *dout = sc.dalloc(out_bytes);
  void *hout = nullptr;
  if (!dl || !dz || !dc || !dout) {
    snprintf(err, 512, "sampling hook: out of device memory");
    return FG_ERR_OUT_OF_MEMORY;
  }
  FGCU_TRY(cudaMallocHost(&hout, out_bytes));
  FGCU_TRY(cudaMemcpyAsync(dl, logits, RV * 4, cudaMemcpyHostToDevice, sc.stream));
  const int rc = sample_and_return(m, dl, V, dz, dc, dout, hout, out, sc.stream, nullptr, err);
  cudaFreeHost(hout);
  return rc;
}

// The model's RMSNorm kernel (norm.cu; the post-norm path, which writes the fp32 result back):
// out = x * rsqrt(mean(x^2) + eps) * w. x, out: [rows, cols]; w: [cols].
extern "C" int fgcu_rmsnorm_host(const float *x, const float *w, float *out, int32_t rows,
                                 int32_t cols, float eps, char *err) {
  FGCU_CHECK(need_device(err));
  Scope sc;
  FGCU_TRY(cudaStreamCreateWithFlags(&sc.stream, cudaStreamNonBlocking));
  const size_t n = (size_t)rows * cols;
  float *dh = (float *)sc.dalloc(n * 4), *dw = (float *)sc.dalloc((size_t)cols * 4);
  bf16 *dout = (bf16 *)sc.dalloc(n * 2);
  if (!dh || !dw || !dout) {
    snprintf(err, 512, "rmsnorm hook: out of device memory");
    return FG_ERR_OUT_OF_MEMORY;
  }
  FGCU_TRY(cudaMemcpyAsync(dh, x, n * 4, cudaMemcpyHostToDevice, sc.stream));
  FGCU_TRY(cudaMemcpyAsync(dw, w, (size_t)cols * 4, cudaMemcpyHostToDevice, sc.stream));
  FGCU_CHECK(norm_rows_in_place(dh, rows, cols, nullptr, kNormRms, dw, nullptr, eps, dout, sc.stream, err));
  FGCU_TRY(cudaMemcpyAsync(out, dh, n * 4, cudaMemcpyDeviceToHost, sc.stream));
  FGCU_TRY(cudaStreamSynchronize(sc.stream));
  return 0;
}

// The GEMM dispatch (gemm.cu) on host buffers; fastgen.h fg_cuda_gemm_host has the contract.
extern "C" int fgcu_gemm_host(const float *x, const float *w, const float *bias, float *y, int32_t M,
                              int32_t N, int32_t K, int32_t act, int32_t flags, float *ms, char *err) {
  FGCU_CHECK(need_device(err));
  Scope sc;
  FGCU_TRY(cudaStreamCreateWithFlags(&sc.stream, cudaStreamNonBlocking));
  struct GemmGuard {  // destroyed before sc, whose destructor waits for the stream
    Gemm *g = nullptr;
    ~GemmGuard() { gemm_destroy(g); }
  } gg;
  const bool gated = act >= 0, y_f32 = flags & FG_GEMM_Y_F32, acc = flags & FG_GEMM_ACCUMULATE;
  const size_t xn = (size_t)M * K, wn = (size_t)N * K, yn = (size_t)M * (gated ? N / 2 : N);
  const size_t y_bytes = yn * (y_f32 ? 4 : 2);
  uint16_t *hb = (uint16_t *)sc.halloc((xn + wn + yn) * 2 + 16);
  if (!hb) {
    snprintf(err, 512, "gemm hook: host allocation failed");
    return FG_ERR_OUT_OF_MEMORY;
  }
  for (size_t i = 0; i < xn; i++) hb[i] = to_bf16_bits(x[i]);
  for (size_t i = 0; i < wn; i++) hb[xn + i] = to_bf16_bits(w[i]);
  bf16 *dx = (bf16 *)sc.dalloc(xn * 2), *dw = (bf16 *)sc.dalloc(wn * 2);
  void *dy = sc.dalloc(y_bytes);
  float *db = gated && bias ? (float *)sc.dalloc((size_t)N * 4) : nullptr;
  int l2 = 0;
  FGCU_TRY(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  const size_t flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : 64 << 20);
  void *flush = ms ? sc.dalloc(flush_bytes) : nullptr;
  if (!dx || !dw || !dy || (gated && bias && !db) || (ms && !flush)) {
    snprintf(err, 512, "gemm hook: out of device memory");
    return FG_ERR_OUT_OF_MEMORY;
  }
  if (!gated) FGCU_CHECK(gemm_create(&gg.g, err));
  FGCU_TRY(cudaMemcpyAsync(dx, hb, xn * 2, cudaMemcpyHostToDevice, sc.stream));
  FGCU_TRY(cudaMemcpyAsync(dw, hb + xn, wn * 2, cudaMemcpyHostToDevice, sc.stream));
  if (db) FGCU_TRY(cudaMemcpyAsync(db, bias, (size_t)N * 4, cudaMemcpyHostToDevice, sc.stream));
  auto launch = [&]() -> int {
    if (gated) {
      if (!gemv_gated(dx, dw, db, act, (bf16 *)dy, M, N, K, sc.stream)) {
        snprintf(err, 512, "gemm hook: the gated GEMV does not take m=%d n=%d k=%d", M, N, K);
        return FG_ERR_UNSUPPORTED;
      }
      FGCU_LAUNCHED("gemv_gated");
      return 0;
    }
    if (flags & FG_GEMM_CUBLASLT) return gemm_cublaslt(gg.g, dx, dw, dy, y_f32, acc, M, N, K, sc.stream, err);
    return gemm(gg.g, dx, dw, dy, y_f32, acc, M, N, K, sc.stream, err);
  };
  if (ms) {  // 20 launches, each timed alone after the flush evicted the weights from L2
    float t[20];
    auto before = [&](int) -> int { return flush_l2(flush, flush_bytes, sc.stream, err); };
    FGCU_CHECK(time_launches(sc.stream, launch, before, 1, t, err));  // the first plans cuBLASLt: not timed
    *ms = t[10];
  }
  // The checked launch, on y as given (accumulate) or poisoned (NaN where nothing writes).
  if (acc) FGCU_TRY(cudaMemcpyAsync(dy, y, y_bytes, cudaMemcpyHostToDevice, sc.stream));
  else FGCU_TRY(cudaMemsetAsync(dy, 0xff, y_bytes, sc.stream));
  FGCU_CHECK(launch());
  if (y_f32) {
    FGCU_TRY(cudaMemcpyAsync(y, dy, y_bytes, cudaMemcpyDeviceToHost, sc.stream));
    FGCU_TRY(cudaStreamSynchronize(sc.stream));
  } else {
    uint16_t *hy = hb + xn + wn;
    FGCU_TRY(cudaMemcpyAsync(hy, dy, y_bytes, cudaMemcpyDeviceToHost, sc.stream));
    FGCU_TRY(cudaStreamSynchronize(sc.stream));
    for (size_t i = 0; i < yn; i++) y[i] = from_bf16_bits(hy[i]);
  }
  return 0;
}

// The FP8 GEMMs (fp8_gemm.cuh) over host buffers: x [M, K] rounded to bf16, w [N, K] E4M3 with
// scales [N, ceil(K / kblock)]; out_mode 0: y bf16 [M, N] (returned as floats), 1: fp32, 2: fp32
// y += (y holds the addend on entry). path: an Fp8Path to force, or 0 for the engine's choice;
// *path_used: the path taken. A fresh cuBLASLt handle per call, probed as an engine's is.
extern "C" int fgcu_fp8_linear_host(const float *x, int32_t M, int32_t K, const uint8_t *w, int32_t N,
                                    const float *scales, int32_t kblock, float input_scale, int32_t out_mode,
                                    int32_t path, float *y, int32_t *path_used, char *err) {
  FGCU_CHECK(need_device(err));
  Scope sc;
  FGCU_TRY(cudaStreamCreateWithFlags(&sc.stream, cudaStreamNonBlocking));
  struct Engines {
    Gemm *g = nullptr;
    Fp8Gemm *f = nullptr;
    ~Engines() {
      fp8_gemm_destroy(f);
      gemm_destroy(g);
    }
  } en;
  FGCU_CHECK(gemm_create(&en.g, err));
  FGCU_CHECK(fp8_gemm_create(en.g, &en.f, err));
  FGCU_CHECK(fp8_probe(en.f, sc.stream, err));
  const size_t nkb = (size_t)(K + kblock - 1) / kblock, xn = (size_t)M * K, yn = (size_t)M * N;
  uint16_t *hb = (uint16_t *)sc.halloc((xn > yn ? xn : yn) * 2 + 16);
  bf16 *dx = (bf16 *)sc.dalloc(xn * 2);
  uint8_t *dw = (uint8_t *)sc.dalloc((size_t)N * K);
  float *ds = (float *)sc.dalloc((size_t)N * nkb * 4), *dy = (float *)sc.dalloc(yn * 4);
  if (!hb || !dx || !dw || !ds || !dy) {
    snprintf(err, 512, "fp8 linear hook: out of memory");
    return FG_ERR_OUT_OF_MEMORY;
  }
  for (size_t i = 0; i < xn; i++) hb[i] = to_bf16_bits(x[i]);
  FGCU_TRY(cudaMemcpyAsync(dx, hb, xn * 2, cudaMemcpyHostToDevice, sc.stream));
  FGCU_TRY(cudaMemcpyAsync(dw, w, (size_t)N * K, cudaMemcpyHostToDevice, sc.stream));
  FGCU_TRY(cudaMemcpyAsync(ds, scales, (size_t)N * nkb * 4, cudaMemcpyHostToDevice, sc.stream));
  if (out_mode == 2) FGCU_TRY(cudaMemcpyAsync(dy, y, yn * 4, cudaMemcpyHostToDevice, sc.stream));
  Weight wt;
  wt.p = dw, wt.dtype = kWeightFp8, wt.kblock = kblock, wt.scales = ds, wt.input_scale = input_scale;
  *path_used = path ? path : fp8_path(en.f, wt, M, N, K, out_mode != 0);
  FGCU_CHECK(fp8_linear(en.f, dx, wt, dy, out_mode != 0, out_mode == 2, M, N, K, sc.stream, err, path));
  if (out_mode == 0) {
    FGCU_TRY(cudaMemcpyAsync(hb, dy, yn * 2, cudaMemcpyDeviceToHost, sc.stream));
    FGCU_TRY(cudaStreamSynchronize(sc.stream));
    for (size_t i = 0; i < yn; i++) y[i] = from_bf16_bits(hb[i]);
  } else {
    FGCU_TRY(cudaMemcpyAsync(y, dy, yn * 4, cudaMemcpyDeviceToHost, sc.stream));
    FGCU_TRY(cudaStreamSynchronize(sc.stream));
  }
  // Bench hook: FASTGEN_FP8_TIMING=<file> appends the median of 20 more launches (ms), each after
  // an L2 flush (y is garbage afterwards: it was copied out above).
  if (const char *tf = fg_knob_str(FG_KNOB_FP8_TIMING); tf[0]) {
    int l2 = 0;
    FGCU_TRY(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
    const size_t flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : 64 << 20);
    void *flush = sc.dalloc(flush_bytes);
    if (!flush) {
      snprintf(err, 512, "fp8 linear hook: out of memory");
      return FG_ERR_OUT_OF_MEMORY;
    }
    float t[20];
    auto before = [&](int) -> int { return flush_l2(flush, flush_bytes, sc.stream, err); };
    auto launch = [&] { return fp8_linear(en.f, dx, wt, dy, out_mode != 0, out_mode == 2, M, N, K, sc.stream, err, path); };
    FGCU_CHECK(time_launches(sc.stream, launch, before, 0, t, err));
    if (FILE *f = fopen(tf, "a")) {
      fprintf(f, "%.6f\n", 0.5 * (t[9] + t[10]));
      fclose(f);
    }
  }
  return 0;
}

extern "C" int fgcu_mla_attention_host(const fg_batch *b, const float *q, const float *cache, float *out, int32_t nh,
                                       int32_t latent, int32_t rope, int32_t bs, int32_t nb, int32_t window,
                                       float scale, float softcap, int32_t splits, int32_t kv_fp8, float kv_scale,
                                       char *err) {
  FGCU_CHECK(need_device(err));
  FGCU_CHECK(mla_attention_check(latent, rope, err));
  Scope sc;
  FGCU_TRY(cudaStreamCreateWithFlags(&sc.stream, cudaStreamNonBlocking));
  const int T = b->num_tokens, D = latent + rope;
  const size_t qn = (size_t)T * nh * D, on = (size_t)T * nh * latent, cache_n = (size_t)nb * bs * D;
  int sms = 0;
  FGCU_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  Meta m;
  FGCU_CHECK(build_meta(sc.meta, b, nh, 1, sms, 1, 0, sc.stream, &m, err));
  int max_context = 0;
  for (int s = 0; s < b->num_seqs; s++) {
    const int end = b->context_lens[s] + b->cu_seqlens[s + 1] - b->cu_seqlens[s];
    if (end > max_context) max_context = end;
  }
  const int nsplit = splits > 0 ? splits : mla_choose_splits(T, nh, max_context, sms);
  // host staging: q and out (bf16); the cache (the CPU layout [nb, bs, D] is the device's) as
  // its dtype stores it (hook_cache)
  uint16_t *hb = (uint16_t *)sc.halloc((qn > on ? qn : on) * 2 + 16);
  if (!hb) {
    snprintf(err, 512, "mla attention hook: host allocation failed");
    return FG_ERR_OUT_OF_MEMORY;
  }
  for (size_t i = 0; i < qn; i++) hb[i] = to_bf16_bits(q[i]);
  bf16 *dq = (bf16 *)sc.dalloc(qn * 2), *dout = (bf16 *)sc.dalloc(on * 2);
  const bf16 *dc = hook_cache(sc, cache, cache_n, kv_fp8, kv_scale);
  float *po = nsplit > 1 ? (float *)sc.dalloc((size_t)nsplit * on * 4) : nullptr;
  float *plse = nsplit > 1 ? (float *)sc.dalloc((size_t)nsplit * T * nh * 4) : nullptr;
  if (!dq || !dc || !dout || (nsplit > 1 && (!po || !plse))) {
    snprintf(err, 512, "mla attention hook: out of device memory");
    return FG_ERR_OUT_OF_MEMORY;
  }
  FGCU_CHECK(sc.status("mla attention hook", err));
  FGCU_LAUNCHED("kv_encode_kernel");
  FGCU_TRY(cudaMemcpyAsync(dq, hb, qn * 2, cudaMemcpyHostToDevice, sc.stream));
  FGCU_TRY(cudaMemsetAsync(dout, 0xff, on * 2, sc.stream));  // poison: NaN where nothing writes
  MlaAttnArgs a;
  memset(&a, 0, sizeof a);
  a.q = dq, a.cache = dc, a.out = dout;
  a.cu_seqlens = m.cu_seqlens, a.context_lens = m.context_lens, a.block_indptr = m.block_indptr;
  a.block_indices = m.block_indices, a.token_seq = m.token_seq;
  a.num_tokens = T, a.num_heads = nh, a.latent = latent, a.rope = rope, a.block_size = bs, a.window = window;
  a.scale = scale, a.softcap = softcap, a.splits = nsplit, a.part_o = po, a.part_lse = plse;
  a.kv_fp8 = kv_fp8 != 0, a.kv_scale = kv_scale;
  FGCU_CHECK(mla_attention(a, sc.stream, err));
  FGCU_CHECK(append_timing(sc.stream, [&] { return mla_attention(a, sc.stream, err); }, err));
  FGCU_TRY(cudaMemcpyAsync(hb, dout, on * 2, cudaMemcpyDeviceToHost, sc.stream));
  FGCU_TRY(cudaStreamSynchronize(sc.stream));
  for (size_t i = 0; i < on; i++) out[i] = from_bf16_bits(hb[i]);
  return 0;
}
