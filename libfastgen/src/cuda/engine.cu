// fgcu_engine (one rank) life cycle: create (device, cuBLASLt, weight arenas), load (cut the
// rank's shard, convert, copy), KV fit (workspaces, then how many blocks the free memory holds)
// and KV alloc, destroy. tp.cu runs these for every rank.
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
  const size_t H = m.hidden_size, I = m.intermediate_size, V = m.vocab_size, Vr = e->vocab_rows;
  const size_t qd = m.num_heads * m.head_dim, qkv = (size_t)e->qkv_rows, mlp = (size_t)e->mlp_rows;
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
  (void)V;
  for (int64_t l = 0; l < m.num_layers; l++) {
    LayerW &w = e->layers[l];
    w.qkv = M(qkv * H);
    w.o = M(H * qd);
    if (m.num_experts > 0) {  // each expert matrix its own 256-byte aligned take (cuBLASLt)
      w.router = M((size_t)m.num_experts * H);
      for (int x = 0; x < m.num_experts; x++) {
        w.ex_in[x] = M(mlp * H);
        w.ex_down[x] = M(H * I);
        w.ex_in_b[x] = m.mlp_bias ? F(mlp) : nullptr;
        w.ex_down_b[x] = m.mlp_bias ? F(H) : nullptr;
      }
    } else {
      w.mlp_in = M(mlp * H);
      w.down = M(H * I);
    }
    w.attn_norm = F(H);
    w.attn_norm_b = m.norm_layer ? F(H) : nullptr;
    w.mlp_norm = has_mlp_norm ? F(H) : nullptr;
    w.mlp_norm_b = has_mlp_norm && m.norm_layer ? F(H) : nullptr;
    w.qkv_b = m.qkv_bias ? F(qkv) : nullptr;
    w.o_b = m.o_bias ? F(H) : nullptr;
    w.mlp_in_b = m.mlp_bias && !m.num_experts ? F(mlp) : nullptr;
    w.down_b = m.mlp_bias && !m.num_experts ? F(H) : nullptr;
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

int fgcu::engine_create(const fgcu_model *full, int device, int rank, int tp, fgcu_engine **out,
                        char *err) {
  *out = nullptr;  // the group (tp.cu) checked that the device exists
  fgcu_engine *e = new fgcu_engine();
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
  e->vocab_rows = (full->vocab_size + tp - 1) / tp;
  e->vocab_begin = rank * e->vocab_rows;
  const fgcu_model &m = e->m;
  const int half = m.rotary_dim / 2;
  if (half > 0) {
    e->inv_freq_host = (double *)malloc(half * sizeof(double));
    memcpy(e->inv_freq_host, full->inv_freq, half * sizeof(double));
  }
  e->m.inv_freq = e->inv_freq_host;
  e->full.inv_freq = e->inv_freq_host;
  e->qkv_rows = (int)((m.num_heads + 2 * m.num_kv_heads) * m.head_dim);
  const bool gated = m.act <= kGatedGeluTanh;
  e->mlp_rows = (int)(gated ? 2 * m.intermediate_size : m.intermediate_size);
  e->layers = (LayerW *)calloc(m.num_layers, sizeof(LayerW));
  if (m.num_experts > 0) {  // per layer: ex_in, ex_down, ex_in_b, ex_down_b, E pointers each
    const size_t E = m.num_experts;
    void **p = (void **)calloc(m.num_layers * 4 * E, sizeof(void *));
    e->expert_ptrs = p;
    for (int64_t l = 0; l < m.num_layers; l++, p += 4 * E) {
      LayerW &w = e->layers[l];
      w.ex_in = (bf16 **)p, w.ex_down = (bf16 **)(p + E);
      w.ex_in_b = (float **)(p + 2 * E), w.ex_down_b = (float **)(p + 3 * E);
    }
  }

  auto fail = [&](int rc) {
    engine_destroy(e);
    return rc;
  };
  cudaError_t ce = cudaSetDevice(device);
  if (ce == cudaSuccess) ce = cudaDeviceGetAttribute(&e->num_sms, cudaDevAttrMultiProcessorCount, device);
  if (ce == cudaSuccess) ce = cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking);
  if (ce != cudaSuccess) {
    snprintf(err, 512, "CUDA device %d: %s", device, cudaGetErrorString(ce));
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
    snprintf(err, 512, "out of device memory: the weights need %.2f GiB (bf16%s), device %d has %.2f of %.2f GiB free",
             gib(e->weight_bytes), tp > 1 ? ", this rank's shard" : "", device, gib(free_b), gib(total_b));
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

void fgcu::engine_destroy(fgcu_engine *e) {
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
  DevBuf *bufs[] = {&e->h,      &e->x,      &e->x2,     &e->qkv,    &e->attn,
                    &e->mlp,    &e->act,    &e->part_o, &e->part_lse, &e->xf,
                    &e->logits, &e->z,      &e->counts, &e->out_dev, &e->logits_part,
                    &e->gathered, &e->emb,  &e->xd};
  for (DevBuf *b : bufs) release(*b);
  release(e->meta);
  moe_work_release(e->moe);
  free(e->expert_ptrs);
  if (e->stream) cudaStreamDestroy(e->stream);
  cudaGetLastError();
  free(e->layers);
  free(e->inv_freq_host);
  delete e;
}

namespace {

// The part of a whole tensor, viewed as [rows, C] row-major, that this rank keeps:
// rows [r0, r0 + nr) x columns [c0, c0 + nc).
struct Shard {
  uint64_t r0 = 0, nr = 0, c0 = 0, nc = 0, C = 1;
};

Shard shard_of(const fgcu_engine *e, int32_t slot, uint64_t numel) {
  const fgcu_model &f = e->full, &m = e->m;
  const uint64_t H = f.hidden_size, hd = f.head_dim;
  Shard s;
  auto rows = [&](uint64_t C, uint64_t r0, uint64_t nr) {
    s.C = C, s.r0 = r0, s.nr = nr, s.c0 = 0, s.nc = C;
  };
  auto cols = [&](uint64_t C, uint64_t c0, uint64_t nc) {
    s.C = C, s.r0 = 0, s.nr = numel / C, s.c0 = c0, s.nc = nc;
  };
  rows(1, 0, numel);  // replicated: the whole tensor
  const uint64_t vr = e->vocab_begin < f.vocab_size ? f.vocab_size - e->vocab_begin : 0;
  const uint64_t vn = vr < (uint64_t)e->vocab_rows ? vr : (uint64_t)e->vocab_rows;
  switch (slot) {
    case FGCU_Q: rows(H, e->q_head_begin * hd, m.num_heads * hd); break;
    case FGCU_K: case FGCU_V: rows(H, e->kv_head_begin * hd, m.num_kv_heads * hd); break;
    case FGCU_Q_BIAS: rows(1, e->q_head_begin * hd, m.num_heads * hd); break;
    case FGCU_K_BIAS: case FGCU_V_BIAS: rows(1, e->kv_head_begin * hd, m.num_kv_heads * hd); break;
    case FGCU_O: cols(f.num_heads * hd, e->q_head_begin * hd, m.num_heads * hd); break;
    case FGCU_GATE: case FGCU_UP: case FGCU_EXPERT_GATE: case FGCU_EXPERT_UP:
      rows(H, e->inter_begin, m.intermediate_size);
      break;
    case FGCU_GATE_BIAS: case FGCU_UP_BIAS: case FGCU_EXPERT_GATE_BIAS: case FGCU_EXPERT_UP_BIAS:
      rows(1, e->inter_begin, m.intermediate_size);
      break;
    case FGCU_DOWN: case FGCU_EXPERT_DOWN: cols(f.intermediate_size, e->inter_begin, m.intermediate_size); break;
    case FGCU_EMBED: case FGCU_LM_HEAD: rows(f.embed_dim, e->vocab_begin, vn); break;
    case FGCU_LM_HEAD_BIAS: rows(1, e->vocab_begin, vn); break;
    default: break;
  }
  return s;
}

}  // namespace

int fgcu::engine_load(fgcu_engine *e, int32_t layer, int32_t expert, int32_t slot, int32_t dtype,
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
    case FGCU_EMBED_PROJ_IN: mat = e->proj_in; break;
    case FGCU_EMBED_PROJ_OUT: mat = e->proj_out; break;
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
        case FGCU_ROUTER: mat = w->router; break;
        default: break;
      }
      if (slot >= FGCU_EXPERT_GATE && slot <= FGCU_EXPERT_DOWN_BIAS) {
        if (!w->ex_in || expert < 0 || expert >= m.num_experts) {
          snprintf(err, 512, "load: expert %d out of range (layer %d)", expert, layer);
          return FG_ERR_INVALID_ARGUMENT;
        }
        bf16 *in = w->ex_in[expert];
        float *in_b = w->ex_in_b[expert];
        switch (slot) {  // the same interleaving as the dense gate / up
          case FGCU_EXPERT_GATE: mat = gated ? in : nullptr, stride = gated ? 2 : 1; break;
          case FGCU_EXPERT_GATE_BIAS: vec = gated ? in_b : nullptr, stride = gated ? 2 : 1; break;
          case FGCU_EXPERT_UP: mat = in + (gated ? H : 0), stride = gated ? 2 : 1; break;
          case FGCU_EXPERT_UP_BIAS: vec = in_b ? in_b + (gated ? 1 : 0) : nullptr, stride = gated ? 2 : 1; break;
          case FGCU_EXPERT_DOWN: mat = w->ex_down[expert]; break;
          default: vec = w->ex_down_b[expert]; break;
        }
      }
  }
  if (!mat && !vec) {
    snprintf(err, 512, "load: tensor slot %d (layer %d) has no place in this model on the CUDA backend", slot, layer);
    return FG_ERR_NOT_FOUND;
  }
  // Cut this rank's shard out of the whole tensor (tensor parallelism); tp == 1 keeps it all.
  const Shard sh = shard_of(e, slot, numel);
  const size_t src_esize = dtype == FG_F32 ? 4 : 2;
  void *cut = nullptr;
  if (sh.nr * sh.nc != numel) {
    cut = malloc(sh.nr * sh.nc * src_esize + 1);
    if (!cut) {
      snprintf(err, 512, "load: out of host memory for a %llu-element shard", (unsigned long long)(sh.nr * sh.nc));
      return FG_ERR_OUT_OF_MEMORY;
    }
    for (uint64_t r = 0; r < sh.nr; r++)
      memcpy((char *)cut + r * sh.nc * src_esize, (const char *)data + ((sh.r0 + r) * sh.C + sh.c0) * src_esize,
             sh.nc * src_esize);
    data = cut;
    numel = sh.nr * sh.nc;
  }
  struct Free {
    void *p;
    ~Free() { free(p); }
  } free_cut{cut};
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

namespace {

uint64_t kv_bytes_per_block(const fgcu_engine *e) {
  const fgcu_model &m = e->m;
  return 2ull * m.num_layers * m.num_kv_heads * e->block_size * m.head_dim * 2;
}

}  // namespace

int fgcu::engine_kv_fit(fgcu_engine *e, int32_t block_size, float memory_fraction, int64_t *blocks,
                        char *err) {
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

int fgcu::engine_kv_alloc(fgcu_engine *e, int64_t blocks, fgcu_info *info, char *err) {
  const fgcu_model &m = e->m;
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
  e->layer_elems = (size_t)blocks * m.num_kv_heads * e->block_size * m.head_dim;
  e->finalized = true;
  info->num_blocks = e->num_blocks;
  info->block_size = e->block_size;
  info->weight_bytes = e->weight_bytes;
  info->kv_bytes = e->kv_bytes;
  return 0;
}
