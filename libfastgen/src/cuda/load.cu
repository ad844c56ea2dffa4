// Loading one tensor into a rank (rank_load): cut the rank's shard out of the whole tensor
// (tensor parallelism; tp == 1 keeps it all), convert it to bf16 (matrices) or fp32 (vectors)
// through a pinned staging buffer, and copy it to its place in the weight arenas (engine.cu).
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

}  // namespace

int fgcu::rank_load(fgcu_rank *e, int32_t layer, int32_t expert, int32_t kind, int32_t dtype,
                      const void *data, uint64_t numel, char *err) {
  const fgcu_model &m = e->m;
  const size_t H = m.hidden_size;
  const size_t qd = m.num_heads * m.head_dim, kvd = m.num_kv_heads * m.head_dim;
  const bool gated = m.act <= kGatedGeluTanh;
  bf16 *mat = nullptr;
  float *vec = nullptr;
  int stride = 1;  // destination rows (matrices) or elements (vectors) between source ones
  const LayerW *w = layer >= 0 && layer < m.num_layers ? &e->layers[layer] : nullptr;
  bool rms_weight = false;  // gets + norm_weight_offset
  switch (kind) {
    case FG_TENSOR_EMBED: mat = e->embed; break;
    case FG_TENSOR_LM_HEAD: mat = m.tie_word_embeddings ? nullptr : e->lm_head; break;
    case FG_TENSOR_POS_EMBED: vec = e->pos_embed; break;
    case FG_TENSOR_FINAL_NORM: vec = e->final_norm, rms_weight = true; break;
    case FG_TENSOR_FINAL_NORM_BIAS: vec = e->final_norm_b; break;
    case FG_TENSOR_LM_HEAD_BIAS: vec = e->lm_head_b; break;
    case FG_TENSOR_EMBED_PROJ_IN: mat = e->proj_in; break;
    case FG_TENSOR_EMBED_PROJ_OUT: mat = e->proj_out; break;
    default:
      if (!w) {
        snprintf(err, 512, "load: layer %d out of range", layer);
        return FG_ERR_INVALID_ARGUMENT;
      }
      switch (kind) {
        case FG_TENSOR_ATTN_NORM: vec = w->attn_norm, rms_weight = true; break;
        case FG_TENSOR_ATTN_NORM_BIAS: vec = w->attn_norm_b; break;
        case FG_TENSOR_Q: mat = w->qkv; break;
        case FG_TENSOR_K: mat = w->qkv + qd * H; break;
        case FG_TENSOR_V: mat = w->qkv + (qd + kvd) * H; break;
        case FG_TENSOR_Q_BIAS: vec = w->qkv_b; break;
        case FG_TENSOR_K_BIAS: vec = w->qkv_b ? w->qkv_b + qd : nullptr; break;
        case FG_TENSOR_V_BIAS: vec = w->qkv_b ? w->qkv_b + qd + kvd : nullptr; break;
        case FG_TENSOR_O: mat = w->o; break;
        case FG_TENSOR_O_BIAS: vec = w->o_b; break;
        case FG_TENSOR_MLP_NORM: vec = w->mlp_norm, rms_weight = true; break;
        case FG_TENSOR_Q_NORM: vec = w->q_norm, rms_weight = true; break;
        case FG_TENSOR_K_NORM: vec = w->k_norm, rms_weight = true; break;
        case FG_TENSOR_POST_ATTN_NORM: vec = w->post_attn_norm, rms_weight = true; break;
        case FG_TENSOR_POST_MLP_NORM: vec = w->post_mlp_norm, rms_weight = true; break;
        case FG_TENSOR_MLP_NORM_BIAS: vec = w->mlp_norm_b; break;
        // gated: rows interleaved gate_0, up_0, gate_1, up_1, ... (see LayerW)
        case FG_TENSOR_GATE: mat = gated ? w->mlp_in : nullptr, stride = gated ? 2 : 1; break;
        case FG_TENSOR_GATE_BIAS: vec = gated ? w->mlp_in_b : nullptr, stride = gated ? 2 : 1; break;
        case FG_TENSOR_UP: mat = w->mlp_in ? w->mlp_in + (gated ? H : 0) : nullptr, stride = gated ? 2 : 1; break;
        case FG_TENSOR_UP_BIAS: vec = w->mlp_in_b ? w->mlp_in_b + (gated ? 1 : 0) : nullptr, stride = gated ? 2 : 1; break;
        case FG_TENSOR_DOWN: mat = w->down; break;
        case FG_TENSOR_DOWN_BIAS: vec = w->down_b; break;
        case FG_TENSOR_ROUTER: mat = w->router; break;
        // the shared expert: the dense layout (gate / up rows interleaved) at its own width
        case FG_TENSOR_SHARED_GATE: mat = gated ? w->sh_in : nullptr, stride = gated ? 2 : 1; break;
        case FG_TENSOR_SHARED_UP: mat = w->sh_in ? w->sh_in + (gated ? H : 0) : nullptr, stride = gated ? 2 : 1; break;
        case FG_TENSOR_SHARED_DOWN: mat = w->sh_down; break;
        case FG_TENSOR_SHARED_EXPERT_GATE: mat = w->sh_gate; break;
        default: break;
      }
      if (kind >= 0 && kind < FG_TENSOR_KIND_COUNT && fg_tensor_kind_scope[kind] == FG_SCOPE_EXPERT) {
        if (!w->ex_in || expert < 0 || expert >= m.num_experts) {
          snprintf(err, 512, "load: expert %d out of range (layer %d)", expert, layer);
          return FG_ERR_INVALID_ARGUMENT;
        }
        bf16 *in = w->ex_in[expert];
        float *in_b = w->ex_in_b[expert];
        switch (kind) {  // the same interleaving as the dense gate / up
          case FG_TENSOR_EXPERT_GATE: mat = gated ? in : nullptr, stride = gated ? 2 : 1; break;
          case FG_TENSOR_EXPERT_GATE_BIAS: vec = gated ? in_b : nullptr, stride = gated ? 2 : 1; break;
          case FG_TENSOR_EXPERT_UP: mat = in + (gated ? H : 0), stride = gated ? 2 : 1; break;
          case FG_TENSOR_EXPERT_UP_BIAS: vec = in_b ? in_b + (gated ? 1 : 0) : nullptr, stride = gated ? 2 : 1; break;
          case FG_TENSOR_EXPERT_DOWN: mat = w->ex_down[expert]; break;
          default: vec = w->ex_down_b[expert]; break;
        }
      }
  }
  if (!mat && !vec) {
    snprintf(err, 512, "load: tensor kind %d (layer %d) has no place in this model on the CUDA backend", kind, layer);
    return FG_ERR_NOT_FOUND;
  }
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
  const float offset = rms_weight && !m.norm_layer ? m.norm_weight_offset : 0.f;
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
      if (dtype == FG_F32 && offset == 0.f) memcpy(dst, (const float *)data + off, n * 4);
      else for (size_t i = 0; i < n; i++) dst[i] = offset + src_at(data, dtype, off + i);
      if (stride == 1) FGCU_TRY(cudaMemcpy(vec + off, dst, n * 4, cudaMemcpyHostToDevice));
      else FGCU_TRY(cudaMemcpy2D(vec + off * stride, 4 * stride, dst, 4, 4, n, cudaMemcpyHostToDevice));
    }
  }
  return 0;
}

