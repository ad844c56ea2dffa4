// fgcu_rank (one rank) life cycle: create (device, cuBLASLt, weight arenas laid out), KV fit
// (workspaces, then how many blocks the free memory holds) and KV alloc, destroy. Loading a
// tensor is load.cu; tp.cu runs these for every rank.
#include <stdlib.h>
#include <string.h>

#include "cuda/engine.cuh"
#include "cuda/ops.cuh"

using namespace fgcu;

namespace {

constexpr int kInitialTokens = 4096;  // activations reserved before the KV pool is sized
constexpr int kInitialRows = 64;      // sampled rows reserved likewise
constexpr uint64_t kSlackBytes = 256ull << 20;

size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
double gib(uint64_t b) { return (double)b / (1ull << 30); }

// Bump allocator: first pass counts, second pass hands out pointers into the arena.
struct Bump {
  char *base = nullptr;
  size_t used = 0;
  void *take(size_t bytes) {
    void *p = base ? base + used : nullptr;
    used = align_up(used + bytes, 256);
    return p;
  }
};

// The arenas: every tensor but the projections (Weights get their memory at load: load.cu).
void layout_weights(fgcu_rank *e, Bump &mat, Bump &vec) {
  const fgcu_model &m = e->m;
  const size_t H = m.hidden_size, Vr = e->vocab_rows;
  const size_t hd = m.head_dim, qkv = (size_t)e->qkv_rows, mlp = (size_t)e->mlp_rows, ex = (size_t)e->ex_rows;
  const bool has_mlp_norm = !m.parallel || m.parallel_mlp_norm;
  auto M = [&](size_t n) { return (bf16 *)mat.take(n * 2); };
  auto F = [&](size_t n) { return (float *)vec.take(n * 4); };
  const size_t D = m.embed_dim;
  e->embed = M(Vr * D);
  e->lm_head = m.tie_word_embeddings ? e->embed : M(Vr * D);
  e->proj_in = D != H ? M(H * D) : nullptr;
  e->proj_out = D != H ? M(D * H) : nullptr;
  e->pos_embed = m.learned_positions ? F((size_t)m.max_position_embeddings * H) : nullptr;
  e->final_norm = m.final_norm ? F(H) : nullptr;
  e->final_norm_b = m.final_norm && m.norm_layer ? F(H) : nullptr;
  e->lm_head_b = m.lm_head_bias ? F(Vr) : nullptr;
  for (int64_t l = 0; l < m.num_layers; l++) {
    LayerW &w = e->layers[l];
    const bool moe = e->moe_layer(l);
    if (moe) {
      w.router = M((size_t)m.num_experts * H);
      for (int x = 0; x < m.num_experts; x++) {
        w.ex_in_b[x] = m.mlp_bias ? F(ex) : nullptr;
        w.ex_down_b[x] = m.mlp_bias ? F(H) : nullptr;
      }
      w.sh_gate = m.shared_expert_intermediate_size && m.shared_expert_gate ? M(H) : nullptr;
    }
    if (m.mla) {
      const MlaModel &a = e->mla_model;
      w.q_a_norm = a.q_lora > 0 ? F(a.q_lora) : nullptr;
      w.kv_a_norm = F(a.latent);
      w.w_uk = M((size_t)a.heads * a.nope * a.latent);
      w.w_uvT = M((size_t)a.heads * a.latent * a.v);
    }
    w.attn_norm = F(H);
    w.attn_norm_b = m.norm_layer ? F(H) : nullptr;
    w.mlp_norm = has_mlp_norm ? F(H) : nullptr;
    w.mlp_norm_b = has_mlp_norm && m.norm_layer ? F(H) : nullptr;
    w.qkv_b = m.qkv_bias ? F(qkv) : nullptr;
    w.o_b = m.o_bias ? F(H) : nullptr;
    w.mlp_in_b = m.mlp_bias && !moe ? F(mlp) : nullptr;
    w.down_b = m.mlp_bias && !moe ? F(H) : nullptr;
    w.q_norm = m.qk_norm ? F(hd) : nullptr;
    w.k_norm = m.qk_norm ? F(hd) : nullptr;
    w.post_attn_norm = m.sandwich_norms ? F(H) : nullptr;
    w.post_mlp_norm = m.sandwich_norms ? F(H) : nullptr;
  }
}

}  // namespace

namespace fgcu {

// Calls fn(w, N, K) for every projection of the rank (each expert's too), loaded or not.
template <typename F>
void each_projection(fgcu_rank *e, F fn) {
  const fgcu_model &m = e->m;
  const int H = (int)m.hidden_size, I = (int)m.intermediate_size, od = (int)e->o_dim();
  const int MI = (int)m.moe_intermediate_size, SI = (int)m.shared_expert_intermediate_size;
  const MlaModel &a = e->mla_model;
  for (int64_t l = 0; l < m.num_layers; l++) {
    LayerW &w = e->layers[l];
    fn(w.qkv, e->qkv_rows, H);
    if (m.mla) fn(w.q_mla, a.q_cols(), a.q_lora > 0 ? a.q_lora : H);
    fn(w.o, H, od);
    if (e->moe_layer(l)) {
      for (int x = 0; x < m.num_experts; x++) fn(w.ex_in[x], e->ex_rows, H), fn(w.ex_down[x], H, MI);
      if (SI) fn(w.sh_in, e->sh_rows, H), fn(w.sh_down, H, SI);
    } else {
      fn(w.mlp_in, e->mlp_rows, H);
      fn(w.down, H, I);
    }
  }
}

bool pdl_enabled() {
  static int major[64];  // per device: 0 unknown, else compute capability major + 1
  if (!fg_knob_int(FG_KNOB_PDL)) return false;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return false;
  if (!major[dev]) {
    int m = 0;
    cudaDeviceGetAttribute(&m, cudaDevAttrComputeCapabilityMajor, dev);
    major[dev] = m + 1;
  }
  return major[dev] - 1 >= 9;
}

int ensure(DevBuf &b, size_t bytes, const char *what, char *err) {
  if (bytes <= b.bytes && b.p) return 0;
  cudaFree(b.p);
  b.p = nullptr;
  b.bytes = 0;
  bytes = align_up(bytes ? bytes : 256, 256);
  const cudaError_t e = cudaMalloc(&b.p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    snprintf(err, 512, "out of device memory for %s (%.2f GiB): %s", what, gib(bytes), cudaGetErrorString(e));
    return FG_ERR_OUT_OF_MEMORY;
  }
  b.bytes = bytes;
  return 0;
}

void release(DevBuf &b) {
  cudaFree(b.p);
  b = DevBuf();
}

void release(MetaBuf &mb) {
  if (mb.host) cudaFreeHost(mb.host);
  cudaFree(mb.dev);
  mb = MetaBuf();
}

}  // namespace fgcu

int fgcu::rank_create(const fgcu_model *full, int device, int rank, int tp, fgcu_rank **out,
                        char *err) {
  *out = nullptr;  // the group (tp.cu) checked that the device exists
  fgcu_rank *e = new fgcu_rank();
  e->full = *full;
  e->m = *full;
  e->rank = rank, e->tp = tp, e->device = device;
  // This rank's slice (tp.cu checked divisibility): heads, KV heads (each rank keeps one shared
  // head when there are fewer KV heads than ranks), intermediate columns, vocab rows.
  fgcu_model &lm = e->m;
  lm.num_heads = full->num_heads / tp;
  e->q_head_begin = rank * lm.num_heads;
  if (full->num_kv_heads >= tp) {
    lm.num_kv_heads = full->num_kv_heads / tp;
    e->kv_head_begin = rank * lm.num_kv_heads;
  } else {
    lm.num_kv_heads = 1;
    e->kv_head_begin = (int64_t)rank * full->num_kv_heads / tp;
  }
  lm.intermediate_size = full->intermediate_size / tp;
  e->inter_begin = rank * lm.intermediate_size;
  lm.moe_intermediate_size = full->moe_intermediate_size / tp;
  e->moe_inter_begin = rank * lm.moe_intermediate_size;
  lm.shared_expert_intermediate_size = full->shared_expert_intermediate_size / tp;
  e->shared_inter_begin = rank * lm.shared_expert_intermediate_size;
  // transformers and vLLM cast the normalizer to the model dtype before multiplying (Gemma)
  lm.embed_scale = __bfloat162float(__float2bfloat16_rn(full->embed_scale));
  e->vocab_rows = (full->vocab_size + tp - 1) / tp;
  e->vocab_begin = rank * e->vocab_rows;
  const fgcu_model &m = e->m;
  const int half = m.rotary_dim / 2;
  if (half > 0) {
    e->inv_freq_host = (double *)malloc(half * sizeof(double));
    memcpy(e->inv_freq_host, full->inv_freq, half * sizeof(double));
  }
  if (half > 0 && full->sliding_inv_freq) {
    e->sliding_inv_freq_host = (double *)malloc(half * sizeof(double));
    memcpy(e->sliding_inv_freq_host, full->sliding_inv_freq, half * sizeof(double));
  }
  e->layer_sliding_host = (uint8_t *)calloc(m.num_layers, 1);
  if (full->layer_sliding) memcpy(e->layer_sliding_host, full->layer_sliding, m.num_layers);
  e->layer_dense_host = (uint8_t *)calloc(m.num_layers, 1);
  if (full->layer_dense) memcpy(e->layer_dense_host, full->layer_dense, m.num_layers);
  e->m.layer_dense = e->full.layer_dense = e->layer_dense_host;
  e->m.inv_freq = e->full.inv_freq = e->inv_freq_host;
  e->m.sliding_inv_freq = e->full.sliding_inv_freq = e->sliding_inv_freq_host;
  e->m.layer_sliding = e->full.layer_sliding = e->layer_sliding_host;
  const int mla_rc = m.mla ? mla_model_of(m, &e->mla_model, err) : 0;  // fgcu_engine_create checked it
  e->qkv_rows = m.mla ? e->mla_model.a_rows() : (int)((m.num_heads + 2 * m.num_kv_heads) * m.head_dim);
  const bool gated = m.act <= kGatedGeluTanh;
  const int rows_per_col = gated ? 2 : 1;
  e->mlp_rows = (int)(rows_per_col * m.intermediate_size);
  e->ex_rows = (int)(rows_per_col * m.moe_intermediate_size);
  e->sh_rows = (int)(rows_per_col * m.shared_expert_intermediate_size);
  // The mlp / act workspaces serve the dense MLP of the layers that have one and the shared
  // expert (if any): the wider of the two.
  bool any_dense = false;
  for (int64_t l = 0; l < m.num_layers; l++) any_dense |= !e->moe_layer(l);
  const int64_t sw = m.num_experts > 0 ? m.shared_expert_intermediate_size : 0;
  e->ws_width = (int)(any_dense && m.intermediate_size > sw ? m.intermediate_size : sw);
  e->ws_rows = rows_per_col * e->ws_width;
  e->layers = (LayerW *)calloc(m.num_layers, sizeof(LayerW));
  if (m.num_experts > 0) {  // per layer: ex_in, ex_down (E Weights each), ex_in_b, ex_down_b
    const size_t E = m.num_experts;
    void **p = (void **)calloc(m.num_layers * 2 * E, sizeof(void *));
    Weight *wts = (Weight *)calloc(m.num_layers * 2 * E, sizeof(Weight));  // all-zero: kWeightNone
    e->expert_ptrs = p;
    e->expert_weights = wts;
    for (int64_t l = 0; l < m.num_layers; l++, p += 2 * E, wts += 2 * E) {
      LayerW &w = e->layers[l];
      w.ex_in = wts, w.ex_down = wts + E;
      w.ex_in_b = (float **)p, w.ex_down_b = (float **)(p + E);
    }
  }

  auto fail = [&](int rc) {
    rank_destroy(e);
    return rc;
  };
  if (mla_rc) return fail(mla_rc);
  cudaError_t ce = cudaSetDevice(device);
  if (ce == cudaSuccess) ce = cudaDeviceGetAttribute(&e->num_sms, cudaDevAttrMultiProcessorCount, device);
  if (ce == cudaSuccess) ce = cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking);
  if (ce != cudaSuccess) {
    snprintf(err, 512, "CUDA device %d: %s", device, cudaGetErrorString(ce));
    return fail(FG_ERR_DEVICE);
  }
  if (int rc = gemm_create(&e->gemm, err)) return fail(rc);
  if (int rc = fp8_gemm_create(e->gemm, &e->fp8, err)) return fail(rc);
  e->graphs_on = fg_knob_int(FG_KNOB_CUDA_GRAPHS);
  e->pieces_on = fg_knob_int(FG_KNOB_PIECEWISE_GRAPHS);
  e->prof = profiler_create();

  Bump mat, vec;
  layout_weights(e, mat, vec);
  e->weight_bytes = mat.used + vec.used;
  // The projections come later, in the dtype they are loaded in: refuse here only a model that
  // would not fit even in FP8 (1 byte a weight, plus one fp32 scale a row).
  uint64_t proj = 0, proj_rows = 0;
  each_projection(e, [&](Weight &, int N, int K) { proj += (uint64_t)N * K, proj_rows += N; });
  e->bf16_model_bytes = e->weight_bytes + proj * 2;
  e->fp8_model_bytes = e->weight_bytes + proj + proj_rows * 4;
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  if (e->fp8_model_bytes > free_b) {
    snprintf(err, 512,
             "out of device memory: the weights need %.2f GiB in bf16 (%.2f GiB with FP8 projections)%s, device %d "
             "has %.2f of %.2f GiB free",
             gib(e->bf16_model_bytes), gib(e->fp8_model_bytes), tp > 1 ? ", this rank's shard" : "", device,
             gib(free_b), gib(total_b));
    return fail(FG_ERR_OUT_OF_MEMORY);
  }
  ce = cudaMalloc(&e->mat_arena, mat.used);
  if (ce == cudaSuccess) ce = cudaMalloc(&e->vec_arena, vec.used);
  if (ce != cudaSuccess) {
    cudaGetLastError();
    snprintf(err, 512, "out of device memory allocating %.2f GiB of weights: %s", gib(e->weight_bytes),
             cudaGetErrorString(ce));
    return fail(FG_ERR_OUT_OF_MEMORY);
  }
  mat = Bump(), vec = Bump();
  mat.base = (char *)e->mat_arena, vec.base = (char *)e->vec_arena;
  layout_weights(e, mat, vec);
  if (half > 0) {
    ce = cudaMalloc(&e->inv_freq, half * sizeof(double));
    if (ce == cudaSuccess) ce = cudaMemcpy(e->inv_freq, e->inv_freq_host, half * sizeof(double), cudaMemcpyHostToDevice);
    if (ce == cudaSuccess && e->sliding_inv_freq_host) {
      ce = cudaMalloc(&e->sliding_inv_freq, half * sizeof(double));
      if (ce == cudaSuccess)
        ce = cudaMemcpy(e->sliding_inv_freq, e->sliding_inv_freq_host, half * sizeof(double), cudaMemcpyHostToDevice);
    }
    if (ce != cudaSuccess) {
      snprintf(err, 512, "inv_freq: %s", cudaGetErrorString(ce));
      return fail(FG_ERR_DEVICE);
    }
  }
  *out = e;
  return 0;
}

void fgcu::rank_destroy(fgcu_rank *e) {
  if (!e) return;
  if (e->stream) cudaStreamSynchronize(e->stream);
  profiler_dump(e->prof);
  for (GraphSlot &g : e->graphs)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  for (PieceSet &ps : e->pieces) release(ps, e->m.num_layers);
  fp8_gemm_destroy(e->fp8);
  gemm_destroy(e->gemm);
  for (int i = 0; i < e->num_weight_allocs; i++) cudaFree(e->weight_allocs[i]);
  free(e->weight_allocs);
  cudaFree(e->mat_arena);
  cudaFree(e->vec_arena);
  cudaFree(e->inv_freq);
  cudaFree(e->sliding_inv_freq);
  cudaFree(e->kv);
  free(e->k_scales);
  free(e->v_scales);
  if (e->staging) cudaFreeHost(e->staging);
  if (e->out_host) cudaFreeHost(e->out_host);
  DevBuf *bufs[] = {&e->h,      &e->x,      &e->x2,     &e->qkv,    &e->attn,
                    &e->mlp,    &e->act,    &e->part_o, &e->part_lse, &e->split_done, &e->norm_part, &e->xf,
                    &e->logits, &e->z,      &e->counts, &e->out_dev, &e->logits_part,
                    &e->gathered, &e->emb,  &e->xd,     &e->y};
  for (DevBuf *b : bufs) release(*b);
  release(e->meta);
  release(e->late);
  moe_work_release(e->moe);
  mla_work_release(e->mla);
  free(e->expert_ptrs);
  free(e->expert_weights);
  if (e->stream) cudaStreamDestroy(e->stream);
  cudaGetLastError();
  free(e->layers);
  free(e->inv_freq_host);
  free(e->sliding_inv_freq_host);
  free(e->layer_sliding_host);
  free(e->layer_dense_host);
  delete e;
}

int fgcu::rank_fp8_reserve(fgcu_rank *e, int tokens, char *err) {
  if (!e->fp8_sized) {  // once, when the weights are in: the probe, the widest K, the scratch
    FGCU_CHECK(fp8_probe(e->fp8, e->stream, err));
    // MLA's input projections ([q | kv_a] or [q_a | kv_a], and q_b) are weight-only: W8A8 there
    // quantized the activations twice in series (before q_a, again before q_b), and deepseek-v2's
    // prompts drifted past E4M3 noise on an H100 (bench/results/device-wave12-h100.md).
    if (e->m.mla)
      for (int64_t l = 0; l < e->m.num_layers; l++) e->layers[l].qkv.weight_only = e->layers[l].q_mla.weight_only = true;
    const bool lt = fp8_lt_ok(e->fp8, false) && fp8_lt_ok(e->fp8, true);
    each_projection(e, [&](Weight &w, int N, int K) {
      if (!w.fp8()) return;
      if (K > e->fp8_kmax) e->fp8_kmax = K;
      // the dequantize fallback: weight-only, K-segment scales, shapes cuBLASLt FP8 refuses, no W8A8 path
      if ((w.weight_only || w.nkb(K) > 1 || N % 16 != 0 || !lt) && (uint64_t)N * K > e->fp8_scratch)
        e->fp8_scratch = (uint64_t)N * K;
    });
    e->fp8_sized = true;
  }
  return fp8_reserve(e->fp8, tokens, e->fp8_kmax, e->fp8_scratch, err);
}

namespace {

// An FP8 cache holds 1 byte an element: twice the blocks in the same memory.
uint64_t kv_bytes_per_block(const fgcu_rank *e) {
  return (uint64_t)e->kv_planes() * e->m.num_layers * e->block_size * e->kv_row() * e->kv_elem_bytes();
}

}  // namespace

int fgcu::rank_kv_dtype(fgcu_rank *e, bool fp8, const float *k_scales, const float *v_scales, char *err) {
  const size_t L = (size_t)e->m.num_layers;
  free(e->k_scales);
  free(e->v_scales);
  e->k_scales = e->v_scales = nullptr;
  e->kv_fp8 = fp8;
  if (!fp8) return 0;
  e->k_scales = (float *)malloc((L ? L : 1) * sizeof(float));
  e->v_scales = (float *)malloc((L ? L : 1) * sizeof(float));
  if (!e->k_scales || !e->v_scales) {
    snprintf(err, 512, "out of host memory for the KV scales");
    return FG_ERR_OUT_OF_MEMORY;
  }
  for (size_t l = 0; l < L; l++) {
    e->k_scales[l] = k_scales ? k_scales[l] : 1.f;
    e->v_scales[l] = v_scales ? v_scales[l] : 1.f;
  }
  return 0;
}

int fgcu::rank_kv_fit(fgcu_rank *e, int32_t block_size, float memory_fraction, int64_t *blocks,
                        char *err) {
  const fgcu_model &m = e->m;
  if (e->staging) {
    cudaFreeHost(e->staging);
    e->staging = nullptr;
  }
  if (e->any_fp8) FGCU_CHECK(rank_fp8_reserve(e, kInitialTokens, err));
  const int hd = (int)m.head_dim;
  // Default block: about 4 KB of one head's K per block (16 tokens at head_dim 128).
  e->block_size = block_size > 0 ? block_size : hd <= 32 ? 64 : hd <= 64 ? 32 : 16;
  const size_t H = m.hidden_size, T = kInitialTokens, R = kInitialRows, V = m.vocab_size;
  const size_t I = e->ws_width, od = e->o_dim();
  FGCU_CHECK(ensure(e->h, T * H * 4, "activations", err));
  FGCU_CHECK(ensure(e->x, T * H * 2, "activations", err));
  if (m.mla) FGCU_CHECK(mla_work_reserve(e->mla, e->mla_model, (int)T, 1, err));
  else FGCU_CHECK(ensure(e->qkv, T * e->qkv_rows * 2, "activations", err));
  FGCU_CHECK(ensure(e->attn, T * od * 2, "activations", err));
  FGCU_CHECK(ensure(e->mlp, T * e->ws_rows * 2, "activations", err));
  FGCU_CHECK(ensure(e->act, T * I * 2, "activations", err));
  if (m.sandwich_norms) FGCU_CHECK(ensure(e->y, T * H * 4, "activations", err));
  FGCU_CHECK(ensure(e->xf, R * H * 2, "logits", err));
  FGCU_CHECK(ensure(e->logits, R * V * 4, "logits", err));
  FGCU_CHECK(ensure(e->z, R * V * 4, "sampling", err));
  if (e->tp > 1) {
    FGCU_CHECK(ensure(e->logits_part, R * e->vocab_rows * 4, "logits", err));
    FGCU_CHECK(ensure(e->gathered, R * e->vocab_rows * e->tp * 4, "logits", err));
  }
  size_t free_b = 0, total_b = 0;
  FGCU_TRY(cudaMemGetInfo(&free_b, &total_b));
  const double frac = memory_fraction > 0 ? memory_fraction : 0.9;
  const uint64_t avail = free_b > kSlackBytes ? free_b - kSlackBytes : 0;
  uint64_t n = (uint64_t)(avail * frac) / kv_bytes_per_block(e);
  if (n > INT32_MAX) n = INT32_MAX;
  *blocks = (int64_t)n;
  e->free_after_weights = free_b;
  return 0;
}

int fgcu::rank_kv_alloc(fgcu_rank *e, int64_t blocks, fgcu_info *info, char *err) {
  const uint64_t bytes = (uint64_t)blocks * kv_bytes_per_block(e);
  const cudaError_t ce = cudaMalloc(&e->kv, bytes);
  if (ce != cudaSuccess) {
    cudaGetLastError();
    e->kv = nullptr;
    snprintf(err, 512, "out of device memory for the KV pool on device %d: %lld blocks = %.2f GiB (%s)",
             e->device, (long long)blocks, gib(bytes), cudaGetErrorString(ce));
    return FG_ERR_OUT_OF_MEMORY;
  }
  FGCU_TRY(cudaMemsetAsync(e->kv, 0, bytes, e->stream));
  FGCU_TRY(cudaStreamSynchronize(e->stream));
  e->num_blocks = (int)blocks;
  e->kv_bytes = bytes;
  e->layer_elems = (size_t)blocks * e->block_size * e->kv_row();
  e->finalized = true;
  info->num_blocks = e->num_blocks;
  info->block_size = e->block_size;
  info->weight_bytes = e->weight_bytes;
  info->kv_bytes = e->kv_bytes;
  return 0;
}
