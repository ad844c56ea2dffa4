// fgcu_engine life cycle: create (device, cuBLASLt, weight arenas), load (convert + copy one
// tensor), finalize (workspaces, then the KV pool from free memory), destroy.
#include <stdlib.h>
#include <string.h>

#include "cuda/engine.cuh"
#include "cuda/ops.cuh"

using namespace fgcu;

namespace {

constexpr size_t kStagingBytes = 32u << 20;
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

void layout_weights(fgcu_engine *e, Bump &mat, Bump &vec) {
  const fgcu_model &m = e->m;
  const size_t H = m.hidden_size, I = m.intermediate_size, V = m.vocab_size;
  const size_t qd = m.num_heads * m.head_dim, qkv = (size_t)e->qkv_rows, mlp = (size_t)e->mlp_rows;
  const bool has_mlp_norm = !m.parallel || m.parallel_mlp_norm;
  auto M = [&](size_t n) { return (bf16 *)mat.take(n * 2); };
  auto F = [&](size_t n) { return (float *)vec.take(n * 4); };
  e->embed = M(V * H);
  e->lm_head = m.tie_word_embeddings ? e->embed : M(V * H);
  e->pos_embed = m.learned_positions ? F((size_t)m.max_position_embeddings * H) : nullptr;
  e->final_norm = m.final_norm ? F(H) : nullptr;
  e->final_norm_b = m.final_norm && m.norm_layer ? F(H) : nullptr;
  e->lm_head_b = m.lm_head_bias ? F(V) : nullptr;
  for (int64_t l = 0; l < m.num_layers; l++) {
    LayerW &w = e->layers[l];
    w.qkv = M(qkv * H);
    w.o = M(H * qd);
    w.mlp_in = M(mlp * H);
    w.down = M(H * I);
    w.attn_norm = F(H);
    w.attn_norm_b = m.norm_layer ? F(H) : nullptr;
    w.mlp_norm = has_mlp_norm ? F(H) : nullptr;
    w.mlp_norm_b = has_mlp_norm && m.norm_layer ? F(H) : nullptr;
    w.qkv_b = m.qkv_bias ? F(qkv) : nullptr;
    w.o_b = m.o_bias ? F(H) : nullptr;
    w.mlp_in_b = m.mlp_bias ? F(mlp) : nullptr;
    w.down_b = m.mlp_bias ? F(H) : nullptr;
  }
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float bf16_to_f32(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
float f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff, bits;
  if (exp == 0x1f) bits = sign | 0x7f800000u | (mant << 13);
  else if (exp) bits = sign | ((exp + 112) << 23) | (mant << 13);
  else if (!mant) bits = sign;
  else {
    int e = -1;
    do e++, mant <<= 1;
    while (!(mant & 0x400));
    bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}
float src_at(const void *data, int32_t dtype, uint64_t i) {
  if (dtype == FG_F32) return ((const float *)data)[i];
  const uint16_t h = ((const uint16_t *)data)[i];
  return dtype == FG_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

}  // namespace

namespace fgcu {

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

extern "C" int fgcu_engine_create(const fgcu_model *model, fgcu_engine **out, char *err) {
  *out = nullptr;
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    snprintf(err, 512, "no CUDA device is visible (driver missing or no GPU)");
    return FG_ERR_DEVICE;
  }
  fgcu_engine *e = new fgcu_engine();
  e->m = *model;
  const fgcu_model &m = e->m;
  const int half = m.rotary_dim / 2;
  if (half > 0) {
    e->inv_freq_host = (double *)malloc(half * sizeof(double));
    memcpy(e->inv_freq_host, model->inv_freq, half * sizeof(double));
  }
  e->m.inv_freq = e->inv_freq_host;
  e->qkv_rows = (int)((m.num_heads + 2 * m.num_kv_heads) * m.head_dim);
  const bool gated = m.act <= kGatedGeluTanh;
  e->mlp_rows = (int)(gated ? 2 * m.intermediate_size : m.intermediate_size);
  e->layers = (LayerW *)calloc(m.num_layers, sizeof(LayerW));

  auto fail = [&](int rc) {
    fgcu_engine_destroy(e);
    return rc;
  };
  cudaError_t ce = cudaSetDevice(0);
  if (ce == cudaSuccess) ce = cudaDeviceGetAttribute(&e->num_sms, cudaDevAttrMultiProcessorCount, 0);
  if (ce == cudaSuccess) ce = cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking);
  if (ce != cudaSuccess) {
    snprintf(err, 512, "CUDA device 0: %s", cudaGetErrorString(ce));
    return fail(FG_ERR_DEVICE);
  }
  if (int rc = gemm_create(&e->gemm, err)) return fail(rc);
  const char *graphs = getenv("FASTGEN_CUDA_GRAPHS");
  e->graphs_on = !(graphs && graphs[0] == '0');
  e->prof = profiler_create();

  Bump mat, vec;
  layout_weights(e, mat, vec);
  e->weight_bytes = mat.used + vec.used;
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  if (e->weight_bytes > free_b) {
    snprintf(err, 512, "out of device memory: the weights need %.2f GiB (bf16), device 0 has %.2f of %.2f GiB free",
             gib(e->weight_bytes), gib(free_b), gib(total_b));
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
    if (ce != cudaSuccess) {
      snprintf(err, 512, "inv_freq: %s", cudaGetErrorString(ce));
      return fail(FG_ERR_DEVICE);
    }
  }
  *out = e;
  return 0;
}

extern "C" void fgcu_engine_destroy(fgcu_engine *e) {
  if (!e) return;
  if (e->stream) cudaStreamSynchronize(e->stream);
  profiler_dump(e->prof);
  for (GraphSlot &g : e->graphs)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  gemm_destroy(e->gemm);
  cudaFree(e->mat_arena);
  cudaFree(e->vec_arena);
  cudaFree(e->inv_freq);
  cudaFree(e->kv);
  if (e->staging) cudaFreeHost(e->staging);
  if (e->out_host) cudaFreeHost(e->out_host);
  DevBuf *bufs[] = {&e->h, &e->x, &e->x2, &e->qkv, &e->attn, &e->mlp, &e->act, &e->part_o,
                    &e->part_lse, &e->xf, &e->logits, &e->z, &e->counts, &e->out_dev};
  for (DevBuf *b : bufs) release(*b);
  release(e->meta);
  if (e->stream) cudaStreamDestroy(e->stream);
  cudaGetLastError();
  free(e->layers);
  free(e->inv_freq_host);
  delete e;
}

extern "C" int fgcu_engine_load(fgcu_engine *e, int32_t layer, int32_t slot, int32_t dtype,
                                const void *data, uint64_t numel, char *err) {
  const fgcu_model &m = e->m;
  const size_t H = m.hidden_size;
  const size_t qd = m.num_heads * m.head_dim, kvd = m.num_kv_heads * m.head_dim;
  const bool gated = m.act <= kGatedGeluTanh;
  bf16 *mat = nullptr;
  float *vec = nullptr;
  int stride = 1;  // destination rows (matrices) or elements (vectors) between source ones
  const LayerW *w = layer >= 0 && layer < m.num_layers ? &e->layers[layer] : nullptr;
  switch (slot) {
    case FGCU_EMBED: mat = e->embed; break;
    case FGCU_LM_HEAD: mat = m.tie_word_embeddings ? nullptr : e->lm_head; break;
    case FGCU_POS_EMBED: vec = e->pos_embed; break;
    case FGCU_FINAL_NORM: vec = e->final_norm; break;
    case FGCU_FINAL_NORM_BIAS: vec = e->final_norm_b; break;
    case FGCU_LM_HEAD_BIAS: vec = e->lm_head_b; break;
    default:
      if (!w) {
        snprintf(err, 512, "load: layer %d out of range", layer);
        return FG_ERR_INVALID_ARGUMENT;
      }
      switch (slot) {
        case FGCU_ATTN_NORM: vec = w->attn_norm; break;
        case FGCU_ATTN_NORM_BIAS: vec = w->attn_norm_b; break;
        case FGCU_Q: mat = w->qkv; break;
        case FGCU_K: mat = w->qkv + qd * H; break;
        case FGCU_V: mat = w->qkv + (qd + kvd) * H; break;
        case FGCU_Q_BIAS: vec = w->qkv_b; break;
        case FGCU_K_BIAS: vec = w->qkv_b ? w->qkv_b + qd : nullptr; break;
        case FGCU_V_BIAS: vec = w->qkv_b ? w->qkv_b + qd + kvd : nullptr; break;
        case FGCU_O: mat = w->o; break;
        case FGCU_O_BIAS: vec = w->o_b; break;
        case FGCU_MLP_NORM: vec = w->mlp_norm; break;
        case FGCU_MLP_NORM_BIAS: vec = w->mlp_norm_b; break;
        // gated: rows interleaved gate_0, up_0, gate_1, up_1, ... (see LayerW)
        case FGCU_GATE: mat = gated ? w->mlp_in : nullptr, stride = gated ? 2 : 1; break;
        case FGCU_GATE_BIAS: vec = gated ? w->mlp_in_b : nullptr, stride = gated ? 2 : 1; break;
        case FGCU_UP: mat = w->mlp_in ? w->mlp_in + (gated ? H : 0) : nullptr, stride = gated ? 2 : 1; break;
        case FGCU_UP_BIAS: vec = w->mlp_in_b ? w->mlp_in_b + (gated ? 1 : 0) : nullptr, stride = gated ? 2 : 1; break;
        case FGCU_DOWN: mat = w->down; break;
        case FGCU_DOWN_BIAS: vec = w->down_b; break;
        default: break;
      }
  }
  if (!mat && !vec) {
    snprintf(err, 512, "load: tensor slot %d (layer %d) has no place in this model on the CUDA backend", slot, layer);
    return FG_ERR_NOT_FOUND;
  }
  if (!e->staging) FGCU_TRY(cudaMallocHost(&e->staging, kStagingBytes));
  const size_t esize = mat ? 2 : 4;
  const size_t row = mat && stride > 1 ? H : 1;  // elements per source row
  const size_t chunk = kStagingBytes / esize / row * row;
  for (uint64_t off = 0; off < numel; off += chunk) {
    const size_t n = numel - off < chunk ? (size_t)(numel - off) : chunk;
    if (mat) {
      uint16_t *dst = (uint16_t *)e->staging;
      if (dtype == FG_BF16) memcpy(dst, (const uint16_t *)data + off, n * 2);
      else for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src_at(data, dtype, off + i));
      if (stride == 1) FGCU_TRY(cudaMemcpy(mat + off, dst, n * 2, cudaMemcpyHostToDevice));
      else FGCU_TRY(cudaMemcpy2D(mat + off * stride, row * 2 * stride, dst, row * 2, row * 2, n / row,
                                 cudaMemcpyHostToDevice));
    } else {
      float *dst = (float *)e->staging;
      if (dtype == FG_F32) memcpy(dst, (const float *)data + off, n * 4);
      else for (size_t i = 0; i < n; i++) dst[i] = src_at(data, dtype, off + i);
      if (stride == 1) FGCU_TRY(cudaMemcpy(vec + off, dst, n * 4, cudaMemcpyHostToDevice));
      else FGCU_TRY(cudaMemcpy2D(vec + off * stride, 4 * stride, dst, 4, 4, n, cudaMemcpyHostToDevice));
    }
  }
  return 0;
}

extern "C" int fgcu_engine_finalize(fgcu_engine *e, int32_t block_size, int32_t num_blocks,
                                    float memory_fraction, fgcu_info *info, char *err) {
  const fgcu_model &m = e->m;
  if (e->staging) {
    cudaFreeHost(e->staging);
    e->staging = nullptr;
  }
  const int hd = (int)m.head_dim;
  // Default block: about 4 KB of one head's K per block (16 tokens at head_dim 128).
  e->block_size = block_size > 0 ? block_size : hd <= 32 ? 64 : hd <= 64 ? 32 : 16;
  const size_t H = m.hidden_size, T = kInitialTokens, R = kInitialRows, V = m.vocab_size;
  const size_t I = m.intermediate_size, qd = m.num_heads * m.head_dim;
  FGCU_CHECK(ensure(e->h, T * H * 4, "activations", err));
  FGCU_CHECK(ensure(e->x, T * H * 2, "activations", err));
  FGCU_CHECK(ensure(e->qkv, T * e->qkv_rows * 2, "activations", err));
  FGCU_CHECK(ensure(e->attn, T * qd * 2, "activations", err));
  FGCU_CHECK(ensure(e->mlp, T * e->mlp_rows * 2, "activations", err));
  FGCU_CHECK(ensure(e->act, T * I * 2, "activations", err));
  FGCU_CHECK(ensure(e->xf, R * H * 2, "logits", err));
  FGCU_CHECK(ensure(e->logits, R * V * 4, "logits", err));
  FGCU_CHECK(ensure(e->z, R * V * 4, "sampling", err));

  const uint64_t per_block = 2ull * m.num_layers * m.num_kv_heads * e->block_size * hd * 2;
  uint64_t blocks;
  if (num_blocks > 0) {
    blocks = (uint64_t)num_blocks;
  } else {
    size_t free_b = 0, total_b = 0;
    FGCU_TRY(cudaMemGetInfo(&free_b, &total_b));
    const double frac = memory_fraction > 0 ? memory_fraction : 0.9;
    const uint64_t avail = free_b > kSlackBytes ? free_b - kSlackBytes : 0;
    blocks = (uint64_t)(avail * frac) / per_block;
    if (blocks > INT32_MAX) blocks = INT32_MAX;
    if (blocks == 0) {
      snprintf(err, 512, "out of device memory: %.2f GiB free after weights holds no KV block of %llu bytes",
               gib(free_b), (unsigned long long)per_block);
      return FG_ERR_OUT_OF_MEMORY;
    }
  }
  const uint64_t bytes = blocks * per_block;
  const cudaError_t ce = cudaMalloc(&e->kv, bytes);
  if (ce != cudaSuccess) {
    cudaGetLastError();
    e->kv = nullptr;
    snprintf(err, 512, "out of device memory for the KV pool: %llu blocks = %.2f GiB (%s)",
             (unsigned long long)blocks, gib(bytes), cudaGetErrorString(ce));
    return FG_ERR_OUT_OF_MEMORY;
  }
  FGCU_TRY(cudaMemsetAsync(e->kv, 0, bytes, e->stream));
  FGCU_TRY(cudaStreamSynchronize(e->stream));
  e->num_blocks = (int)blocks;
  e->kv_bytes = bytes;
  e->layer_elems = (size_t)blocks * m.num_kv_heads * e->block_size * hd;
  e->finalized = true;
  info->num_blocks = e->num_blocks;
  info->block_size = e->block_size;
  info->weight_bytes = e->weight_bytes;
  info->kv_bytes = e->kv_bytes;
  return 0;
}
