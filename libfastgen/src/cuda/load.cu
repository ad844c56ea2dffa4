// Loading one tensor into a rank (rank_load): cut the rank's shard out of the whole tensor
// (tensor parallelism; tp == 1 keeps it all), convert it to bf16 (matrices) or fp32 (vectors)
// through a pinned staging buffer, and copy it to its place: the weight arenas (engine.cu), or a
// part of a projection's Weight (weight.cuh). A Weight gets its device memory when its first part
// arrives, bf16 (rank_load) or FP8 with scales (rank_load_fp8, kept as given); the core converts
// any later part to that dtype first (it asks rank_weight_dtype).
#include <stdlib.h>
#include <string.h>

#include "cuda/engine.cuh"
#include "cuda/ops.cuh"

using namespace fgcu;

namespace {

constexpr size_t kStagingBytes = 32u << 20;

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



// The part of a whole tensor, viewed as [rows, C] row-major, that this rank keeps:
// rows [r0, r0 + nr) x columns [c0, c0 + nc).
struct Shard {
  uint64_t r0 = 0, nr = 0, c0 = 0, nc = 0, C = 1;
};

Shard shard_of(const fgcu_rank *e, int32_t kind, uint64_t numel) {
  const fgcu_model &f = e->full, &m = e->m;
  const uint64_t H = f.hidden_size, hd = f.head_dim;
  Shard s;
  if (e->tp == 1) {  // one rank keeps every tensor whole
    s.C = 1, s.nr = numel, s.nc = 1;
    return s;
  }
  auto rows = [&](uint64_t C, uint64_t r0, uint64_t nr) {
    s.C = C, s.r0 = r0, s.nr = nr, s.c0 = 0, s.nc = C;
  };
  auto cols = [&](uint64_t C, uint64_t c0, uint64_t nc) {
    s.C = C, s.r0 = 0, s.nr = numel / C, s.c0 = c0, s.nc = nc;
  };
  rows(1, 0, numel);  // replicated: the whole tensor
  const uint64_t vr = e->vocab_begin < f.vocab_size ? f.vocab_size - e->vocab_begin : 0;
  const uint64_t vn = vr < (uint64_t)e->vocab_rows ? vr : (uint64_t)e->vocab_rows;
  switch (kind) {
    case FG_TENSOR_Q: rows(H, e->q_head_begin * hd, m.num_heads * hd); break;
    case FG_TENSOR_K: case FG_TENSOR_V: rows(H, e->kv_head_begin * hd, m.num_kv_heads * hd); break;
    case FG_TENSOR_Q_BIAS: rows(1, e->q_head_begin * hd, m.num_heads * hd); break;
    case FG_TENSOR_K_BIAS: case FG_TENSOR_V_BIAS: rows(1, e->kv_head_begin * hd, m.num_kv_heads * hd); break;
    case FG_TENSOR_O: cols(f.num_heads * hd, e->q_head_begin * hd, m.num_heads * hd); break;
    // MLP columns: the dense MLP, each expert and the shared expert split alike, each at its width
    case FG_TENSOR_GATE: case FG_TENSOR_UP: rows(H, e->inter_begin, m.intermediate_size); break;
    case FG_TENSOR_GATE_BIAS: case FG_TENSOR_UP_BIAS: rows(1, e->inter_begin, m.intermediate_size); break;
    case FG_TENSOR_DOWN: cols(f.intermediate_size, e->inter_begin, m.intermediate_size); break;
    case FG_TENSOR_EXPERT_GATE: case FG_TENSOR_EXPERT_UP: rows(H, e->moe_inter_begin, m.moe_intermediate_size); break;
    case FG_TENSOR_EXPERT_GATE_BIAS: case FG_TENSOR_EXPERT_UP_BIAS:
      rows(1, e->moe_inter_begin, m.moe_intermediate_size);
      break;
    case FG_TENSOR_EXPERT_DOWN: cols(f.moe_intermediate_size, e->moe_inter_begin, m.moe_intermediate_size); break;
    case FG_TENSOR_SHARED_GATE: case FG_TENSOR_SHARED_UP:
      rows(H, e->shared_inter_begin, m.shared_expert_intermediate_size);
      break;
    case FG_TENSOR_SHARED_DOWN:
      cols(f.shared_expert_intermediate_size, e->shared_inter_begin, m.shared_expert_intermediate_size);
      break;
    case FG_TENSOR_EMBED: case FG_TENSOR_LM_HEAD: rows(f.embed_dim, e->vocab_begin, vn); break;
    case FG_TENSOR_LM_HEAD_BIAS: rows(1, e->vocab_begin, vn); break;
    default: break;
  }
  return s;
}

// Where one tensor goes on a rank: rows row0, row0 + stride, ... of a projection w [N, K] (the
// rank's shard; gated gate / up rows interleave), a bf16 matrix of the arenas, or an fp32 vector
// of the arenas written every stride-th element.
struct Target {
  Weight *w = nullptr;
  int64_t N = 0, K = 0, row0 = 0;
  bf16 *mat = nullptr;
  float *vec = nullptr;
  int stride = 1;
  bool rms_weight = false;  // gets + norm_weight_offset
  bool kv_b = false;        // MLA's kv_b: split into the layer's w_uk and w_uvT (load_kv_b)
};

int target_of(const fgcu_rank *e, int32_t layer, int32_t expert, int32_t kind, Target *out, char *err) {
  const fgcu_model &m = e->m;
  const int64_t H = m.hidden_size, qd = m.num_heads * m.head_dim, kvd = m.num_kv_heads * m.head_dim;
  const int64_t QL = m.q_lora_rank, q_in = QL > 0 ? QL : H;  // MLA: q_b's or q's input width
  const bool gated = m.act <= kGatedGeluTanh;
  const int g2 = gated ? 2 : 1;
  Target t;
  // part of projection w [N, K] from row r0, every `stride` rows
  auto part = [&](Weight &w, int64_t N, int64_t K, int64_t r0, int stride) {
    t.w = &w, t.N = N, t.K = K, t.row0 = r0, t.stride = stride;
  };
  LayerW *w = layer >= 0 && layer < m.num_layers ? &e->layers[layer] : nullptr;
  const bool dense = w && !e->moe_layer(layer);  // the layer has the dense MLP
  switch (kind) {
    case FG_TENSOR_EMBED: t.mat = e->embed; break;
    case FG_TENSOR_LM_HEAD: t.mat = m.tie_word_embeddings ? nullptr : e->lm_head; break;
    case FG_TENSOR_POS_EMBED: t.vec = e->pos_embed; break;
    case FG_TENSOR_FINAL_NORM: t.vec = e->final_norm, t.rms_weight = true; break;
    case FG_TENSOR_FINAL_NORM_BIAS: t.vec = e->final_norm_b; break;
    case FG_TENSOR_LM_HEAD_BIAS: t.vec = e->lm_head_b; break;
    case FG_TENSOR_EMBED_PROJ_IN: t.mat = e->proj_in; break;
    case FG_TENSOR_EMBED_PROJ_OUT: t.mat = e->proj_out; break;
    default:
      if (!w) {
        snprintf(err, 512, "load: layer %d out of range", layer);
        return FG_ERR_INVALID_ARGUMENT;
      }
      switch (kind) {
        case FG_TENSOR_ATTN_NORM: t.vec = w->attn_norm, t.rms_weight = true; break;
        case FG_TENSOR_ATTN_NORM_BIAS: t.vec = w->attn_norm_b; break;
        case FG_TENSOR_Q:
          if (m.mla) part(w->q_mla, qd, H, 0, 1);
          else part(w->qkv, e->qkv_rows, H, 0, 1);
          break;
        case FG_TENSOR_K: part(w->qkv, e->qkv_rows, H, qd, 1); break;
        case FG_TENSOR_V: part(w->qkv, e->qkv_rows, H, qd + kvd, 1); break;
        case FG_TENSOR_Q_BIAS: t.vec = w->qkv_b; break;
        case FG_TENSOR_K_BIAS: t.vec = w->qkv_b ? w->qkv_b + qd : nullptr; break;
        case FG_TENSOR_V_BIAS: t.vec = w->qkv_b ? w->qkv_b + qd + kvd : nullptr; break;
        case FG_TENSOR_O: part(w->o, H, e->o_dim(), 0, 1); break;
        // MLA: Wa = [q_a | kv_a], the latent norms, q_b, and kv_b split in two
        case FG_TENSOR_Q_A: part(w->qkv, e->qkv_rows, H, 0, 1); break;
        case FG_TENSOR_KV_A: part(w->qkv, e->qkv_rows, H, QL, 1); break;
        case FG_TENSOR_Q_B: part(w->q_mla, qd, q_in, 0, 1); break;
        case FG_TENSOR_Q_A_NORM: t.vec = w->q_a_norm, t.rms_weight = true; break;
        case FG_TENSOR_KV_A_NORM: t.vec = w->kv_a_norm, t.rms_weight = true; break;
        case FG_TENSOR_KV_B: t.kv_b = w->w_uk != nullptr; break;
        case FG_TENSOR_O_BIAS: t.vec = w->o_b; break;
        case FG_TENSOR_MLP_NORM: t.vec = w->mlp_norm, t.rms_weight = true; break;
        case FG_TENSOR_Q_NORM: t.vec = w->q_norm, t.rms_weight = true; break;
        case FG_TENSOR_K_NORM: t.vec = w->k_norm, t.rms_weight = true; break;
        case FG_TENSOR_POST_ATTN_NORM: t.vec = w->post_attn_norm, t.rms_weight = true; break;
        case FG_TENSOR_POST_MLP_NORM: t.vec = w->post_mlp_norm, t.rms_weight = true; break;
        case FG_TENSOR_MLP_NORM_BIAS: t.vec = w->mlp_norm_b; break;
        // gated: rows interleaved gate_0, up_0, gate_1, up_1, ... (see LayerW)
        case FG_TENSOR_GATE: if (gated && dense) part(w->mlp_in, e->mlp_rows, H, 0, 2); break;
        case FG_TENSOR_GATE_BIAS: t.vec = gated ? w->mlp_in_b : nullptr, t.stride = g2; break;
        case FG_TENSOR_UP: if (dense) part(w->mlp_in, e->mlp_rows, H, gated ? 1 : 0, g2); break;
        case FG_TENSOR_UP_BIAS: t.vec = w->mlp_in_b ? w->mlp_in_b + (gated ? 1 : 0) : nullptr, t.stride = g2; break;
        case FG_TENSOR_DOWN: if (dense) part(w->down, H, m.intermediate_size, 0, 1); break;
        case FG_TENSOR_DOWN_BIAS: t.vec = w->down_b; break;
        case FG_TENSOR_ROUTER: t.mat = w->router; break;
        // the shared expert: the dense layout (gate / up rows interleaved) at its own width
        case FG_TENSOR_SHARED_GATE: if (gated && e->sh_rows) part(w->sh_in, e->sh_rows, H, 0, 2); break;
        case FG_TENSOR_SHARED_UP: if (e->sh_rows) part(w->sh_in, e->sh_rows, H, gated ? 1 : 0, g2); break;
        case FG_TENSOR_SHARED_DOWN: if (e->sh_rows) part(w->sh_down, H, m.shared_expert_intermediate_size, 0, 1); break;
        case FG_TENSOR_SHARED_EXPERT_GATE: t.mat = w->sh_gate; break;
        default: break;
      }
      if (kind >= 0 && kind < FG_TENSOR_KIND_COUNT && fg_tensor_kind_scope[kind] == FG_SCOPE_EXPERT) {
        if (!w->ex_in || expert < 0 || expert >= m.num_experts) {
          snprintf(err, 512, "load: expert %d out of range (layer %d)", expert, layer);
          return FG_ERR_INVALID_ARGUMENT;
        }
        float *in_b = w->ex_in_b[expert];
        switch (kind) {  // the same interleaving as the dense gate / up
          case FG_TENSOR_EXPERT_GATE: if (gated) part(w->ex_in[expert], e->ex_rows, H, 0, 2); break;
          case FG_TENSOR_EXPERT_GATE_BIAS: t.vec = gated ? in_b : nullptr, t.stride = g2; break;
          case FG_TENSOR_EXPERT_UP: part(w->ex_in[expert], e->ex_rows, H, gated ? 1 : 0, g2); break;
          case FG_TENSOR_EXPERT_UP_BIAS: t.vec = in_b ? in_b + (gated ? 1 : 0) : nullptr, t.stride = g2; break;
          case FG_TENSOR_EXPERT_DOWN: part(w->ex_down[expert], H, m.moe_intermediate_size, 0, 1); break;
          default: t.vec = w->ex_down_b[expert]; break;
        }
      }
  }
  if (!t.w && !t.mat && !t.vec && !t.kv_b) {
    snprintf(err, 512, "load: tensor kind %d (layer %d) has no place in this model on the CUDA backend", kind, layer);
    return FG_ERR_NOT_FOUND;
  }
  *out = t;
  return 0;
}

size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
double gib(uint64_t b) { return (double)b / (1ull << 30); }

// MLA's kv_b [nh * (dn + dv), L] (per head dn key rows, then dv value rows) into the layer's
// w_uk [nh, dn, L] (the key rows as they are) and w_uvT [nh, L, dv] (the value rows transposed).
int load_kv_b(fgcu_rank *e, const LayerW &w, int32_t dtype, const void *data, uint64_t numel, char *err) {
  const MlaModel &a = e->mla_model;
  const size_t nh = a.heads, dn = a.nope, dv = a.v, L = a.latent, per = dn + dv;
  if (numel != nh * per * L) {
    snprintf(err, 512, "load: kv_b has %llu elements, expected %zu", (unsigned long long)numel, nh * per * L);
    return FG_ERR_INTERNAL;
  }
  uint16_t *uk = (uint16_t *)malloc(nh * dn * L * 2 + 2), *uv = (uint16_t *)malloc(nh * L * dv * 2 + 2);
  struct Free {
    void *a, *b;
    ~Free() { free(a), free(b); }
  } free_both{uk, uv};
  if (!uk || !uv) {
    snprintf(err, 512, "load: out of host memory for kv_b");
    return FG_ERR_OUT_OF_MEMORY;
  }
  for (size_t h = 0; h < nh; h++)
    for (size_t r = 0; r < per; r++)
      for (size_t c = 0; c < L; c++) {
        const uint16_t v = f32_to_bf16(src_at(data, dtype, (h * per + r) * L + c));
        if (r < dn) uk[(h * dn + r) * L + c] = v;
        else uv[(h * L + c) * dv + (r - dn)] = v;
      }
  FGCU_TRY(cudaMemcpy(w.w_uk, uk, nh * dn * L * 2, cudaMemcpyHostToDevice));
  FGCU_TRY(cudaMemcpy(w.w_uvT, uv, nh * L * dv * 2, cudaMemcpyHostToDevice));
  return 0;
}

// Gives projection w [N, K] its device memory, as bf16, or as FP8 with kblock-wide scales.
int alloc_weight(fgcu_rank *e, Weight &w, int64_t N, int64_t K, int32_t dtype, int64_t kblock, int32_t layer,
                 int32_t kind, char *err) {
  const size_t data = dtype == kWeightFp8 ? align_up((size_t)(N * K), 256) : (size_t)(N * K) * 2;
  const size_t nkb = dtype == kWeightFp8 ? (size_t)((K + kblock - 1) / kblock) : 0;
  const size_t bytes = data + (size_t)N * nkb * 4;
  if (e->num_weight_allocs == e->cap_weight_allocs) {
    const int cap = e->cap_weight_allocs ? 2 * e->cap_weight_allocs : 256;
    void **grown = (void **)realloc(e->weight_allocs, cap * sizeof(void *));
    if (!grown) {
      snprintf(err, 512, "load: out of host memory");
      return FG_ERR_OUT_OF_MEMORY;
    }
    e->weight_allocs = grown, e->cap_weight_allocs = cap;
  }
  void *p = nullptr;
  const cudaError_t ce = cudaMalloc(&p, bytes);
  if (ce != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    snprintf(err, 512,
             "out of device memory for layer %d's tensor kind %d (%s, %.3f GiB): %.2f GiB of weights are on device "
             "%d, %.2f GiB free; the whole model takes %.2f GiB in bf16, %.2f GiB with FP8 projections",
             layer, kind, dtype == kWeightFp8 ? "FP8" : "bf16", gib(bytes), gib(e->weight_bytes), e->device,
             gib(free_b), gib(e->bf16_model_bytes), gib(e->fp8_model_bytes));
    return FG_ERR_OUT_OF_MEMORY;
  }
  e->weight_allocs[e->num_weight_allocs++] = p;
  e->weight_bytes += bytes;
  w.p = p;
  w.dtype = dtype;
  if (dtype == kWeightFp8) {
    w.kblock = (int32_t)kblock;
    w.scales = (float *)((char *)p + data);
    e->any_fp8 = true;
  }
  return 0;
}

}  // namespace

int fgcu::rank_weight_dtype(const fgcu_rank *e, int32_t layer, int32_t expert, int32_t kind) {
  Target t;
  char err[512];
  if (target_of(e, layer, expert, kind, &t, err) != 0 || !t.w) return -1;
  return t.w->dtype;
}

int fgcu::rank_load(fgcu_rank *e, int32_t layer, int32_t expert, int32_t kind, int32_t dtype,
                      const void *data, uint64_t numel, char *err) {
  const fgcu_model &m = e->m;
  Target t;
  FGCU_CHECK(target_of(e, layer, expert, kind, &t, err));
  if (t.kv_b) return load_kv_b(e, e->layers[layer], dtype, data, numel, err);
  if (t.w) {
    if (t.w->dtype == kWeightNone) FGCU_CHECK(alloc_weight(e, *t.w, t.N, t.K, kWeightBf16, 0, layer, kind, err));
    if (t.w->dtype != kWeightBf16) {
      snprintf(err, 512, "load: layer %d's tensor kind %d arrives unquantized for an FP8 projection", layer, kind);
      return FG_ERR_INTERNAL;
    }
  }
  bf16 *mat = t.w ? (bf16 *)t.w->p + t.row0 * t.K : t.mat;
  float *vec = t.vec;
  const int stride = t.stride;  // destination rows (matrices) or elements (vectors) between source ones
  // Cut this rank's shard out of the whole tensor (tensor parallelism); tp == 1 keeps it all.
  const Shard sh = shard_of(e, kind, numel);
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
  // RMSNorm weights multiply as (offset + w), added here in fp32 (LayerNorm has no offset: spec.cpp)
  const float offset = t.rms_weight && !m.norm_layer ? m.norm_weight_offset : 0.f;
  const size_t row = mat && stride > 1 ? (size_t)t.K : 1;  // elements per source row
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
      if (dtype == FG_F32 && offset == 0.f) memcpy(dst, (const float *)data + off, n * 4);
      else for (size_t i = 0; i < n; i++) dst[i] = offset + src_at(data, dtype, off + i);
      if (stride == 1) FGCU_TRY(cudaMemcpy(vec + off, dst, n * 4, cudaMemcpyHostToDevice));
      else FGCU_TRY(cudaMemcpy2D(vec + off * stride, 4 * stride, dst, 4, 4, n, cudaMemcpyHostToDevice));
    }
  }
  return 0;
}

int fgcu::rank_load_fp8(fgcu_rank *e, int32_t layer, int32_t expert, int32_t kind, const uint8_t *q, int64_t rows,
                        int64_t cols, const float *scales, int64_t kblock, float input_scale, char *err) {
  Target t;
  FGCU_CHECK(target_of(e, layer, expert, kind, &t, err));
  if (!t.w || e->tp != 1 || cols != t.K || rows < 1 || t.row0 + (rows - 1) * t.stride >= t.N || kblock < 1 ||
      (kblock < cols && kblock % 16 != 0) || cols % 16 != 0) {
    snprintf(err, 512, "load_fp8: layer %d's tensor kind %d [%lld, %lld] (scale blocks of %lld) is not an FP8 part of "
             "a one-rank projection", layer, kind, (long long)rows, (long long)cols, (long long)kblock);
    return FG_ERR_INTERNAL;
  }
  Weight &w = *t.w;
  if (w.dtype == kWeightNone) FGCU_CHECK(alloc_weight(e, w, t.N, t.K, kWeightFp8, kblock < cols ? kblock : cols, layer, kind, err));
  if (w.dtype != kWeightFp8) {
    snprintf(err, 512, "load_fp8: layer %d's tensor kind %d is FP8 for a bf16 projection", layer, kind);
    return FG_ERR_INTERNAL;
  }
  // This part's scales over the projection's scale columns: group column c covers K from
  // c * w.kblock, which lies in this part's column (c * w.kblock) / kblock. Exact when this part's
  // blocks are whole multiples of the projection's (or one per row).
  const int64_t nkb = w.nkb((int)cols), src_nkb = (cols + kblock - 1) / kblock;
  if (kblock != w.kblock && src_nkb > 1 && kblock % w.kblock != 0) {
    snprintf(err, 512, "load: layer %d's tensor kind %d has FP8 scale blocks of %lld columns where the other parts "
             "of its projection have %d: one projection's parts must share their block size", layer, kind,
             (long long)kblock, w.kblock);
    return FG_ERR_UNSUPPORTED;
  }
  float *ex = (float *)malloc((size_t)rows * nkb * 4 + 4);
  if (!ex) {
    snprintf(err, 512, "load: out of host memory");
    return FG_ERR_OUT_OF_MEMORY;
  }
  struct Free {
    void *p;
    ~Free() { free(p); }
  } free_ex{ex};
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < nkb; c++) ex[r * nkb + c] = scales[r * src_nkb + (c * w.kblock) / kblock];
  if (input_scale > w.input_scale) w.input_scale = input_scale;  // q, k, v share x: the largest
  if (!e->staging) FGCU_TRY(cudaMallocHost(&e->staging, kStagingBytes));
  const int64_t K = cols, chunk = (int64_t)(kStagingBytes / K);
  uint8_t *dst = (uint8_t *)w.p + t.row0 * K;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = rows - r0 < chunk ? rows - r0 : chunk;
    memcpy(e->staging, q + r0 * K, (size_t)(n * K));
    FGCU_TRY(cudaMemcpy2D(dst + r0 * t.stride * K, K * t.stride, e->staging, K, K, n, cudaMemcpyHostToDevice));
  }
  FGCU_TRY(cudaMemcpy2D(w.scales + t.row0 * nkb, nkb * 4 * t.stride, ex, nkb * 4, nkb * 4, rows,
                        cudaMemcpyHostToDevice));
  return 0;
}
