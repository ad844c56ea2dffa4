// DeepSeek-V2's multi-head latent attention (MLA) on the device, in the absorbed form: attention
// runs in the latent space, so the cache holds one [latent | k_pe] row per token for every head.
// CPU twin: cpu/mla.cpp (same steps, fp32 throughout; here bf16 between the steps).
//
//   x [T, H] bf16 ─ a = x Wa^T ─▶ fp32 [T, QL + L + R]    Wa = [q_a rows (QL > 0) | kv_a rows]
//   mla_prep     qa  = norm(a[:, :QL]) * q_a_norm                        bf16 [T, QL]
//                row = [norm(a[:, QL:QL+L]) * kv_a_norm | RoPE(a[:, QL+L:])] -> cache slot (bf16,
//                      or FP8: e4m3(row / kv_scale) of the fp32 values, as cpu/mla.cpp rounds them)
//   q = qa Wq_b^T (QL > 0) or x Wq^T                                      bf16 [T, nh, dn + R]
//   mla_q_rope   qabs[t, h, L:]  = RoPE(q[t, h, dn:])
//   head_matmul  qabs[t, h, :L]  = q[t, h, :dn] W_uk[h]                   bf16 [T, nh, L + R]
//   mla_attention (attention_mla.cuh): lat = softmax(qabs . rows) rows[:, :L]  bf16 [T, nh, L]
//   head_matmul  o[t, h] = lat[t, h] W_uvT[h]                             bf16 [T, nh * dv]
// The caller then adds o Wo^T to the residual like any attention output.
//   H hidden, nh heads, dn qk_nope_head_dim, R qk_rope_head_dim, dv v_head_dim, L kv_lora_rank,
//   QL q_lora_rank (0: q projected from x directly, V2-Lite)
// kv_b [nh * (dn + dv), L] is kept as W_uk [nh, dn, L] (its key rows as they are) and W_uvT
// [nh, L, dv] (its value rows transposed, load.cu), so that both per-head products read weight
// rows along their output columns: one kernel serves both.
// Norms are RMSNorm (weights already offset + w) or, for a LayerNorm model, LayerNorm without bias,
// as cpu/mla.cpp's norm_params; eps latent_norm_eps. RoPE pairs follow rope_interleaved.
#pragma once
#include "cuda/attention_mla.cuh"
#include "cuda/cuda_api.h"
#include "cuda/linear.cuh"

namespace fgcu {

// The model's MLA dims and rules (fgcu_model's, checked by mla_model_of).
struct MlaModel {
  int hidden, heads, nope, rope, v, latent, q_lora;
  float eps;               // latent_norm_eps
  bool norm_layer;         // LayerNorm model: the latent norms are LayerNorms without bias
  bool interleaved;        // RoPE pairs (2i, 2i + 1), else (i, i + rope / 2)
  float scale, softcap;    // attention softmax scale, logit softcap (0: none)
  int a_rows() const { return q_lora + latent + rope; }
  int q_cols() const { return heads * (nope + rope); }
  int row() const { return latent + rope; }  // a cache row
};

// One layer's weights and cache; its RoPE table (a sliding layer's may be its own) and window.
struct MlaLayer {
  const Weight *a;               // [QL + L + R, H]
  const Weight *q;               // [nh * (dn + R), QL] (q_b) or [nh * (dn + R), H] (q)
  const float *q_a_norm;         // [QL] or null
  const float *kv_a_norm;        // [L]
  const bf16 *w_uk, *w_uvT;      // [nh, dn, L], [nh, L, dv]
  bf16 *cache;                   // [num_blocks, block_size, L + R] (kv_fp8: E4M3 bytes)
  const double *inv_freq;        // [R / 2] device
  float attn_factor;             // cos and sin times it (yarn)
  int window;                    // 0: every earlier position
  bool kv_fp8;                   // the cache holds e4m3(row / kv_scale)
  float kv_scale;                // the layer's K scale (--kv-cache-dtype fp8)
};

// The step's batch on the device (engine.cuh Meta) as MLA reads it.
struct MlaStep {
  int T, splits, block_size;
  const int *positions, *token_seq, *cu_seqlens, *context_lens, *block_indptr, *block_indices;
};

// Workspaces, owned by the caller, grown on demand (mla_work_reserve).
struct MlaWork {
  DevBuf a;                  // fp32 [T, QL + L + R]
  DevBuf qa;                 // bf16 [T, QL]
  DevBuf q;                  // bf16 [T, nh * (dn + R)]
  DevBuf qabs;               // bf16 [T, nh, L + R]
  DevBuf lat;                // bf16 [T, nh, L]
  DevBuf part_o, part_lse;   // splits > 1: fp32 [splits, T, nh, L], [splits, T, nh]
};

// The MLA dims and rules of model m (m.mla set) into *out: 0, or FG_ERR_UNSUPPORTED naming the
// dims the kernels are not built for (checked at engine create, before any device work).
int mla_model_of(const fgcu_model &m, MlaModel *out, char *err);
int mla_work_reserve(MlaWork &w, const MlaModel &m, int T, int splits, char *err);
void mla_work_release(MlaWork &w);
// The workspaces' addresses folded into one word (a captured graph is only valid for them).
uint64_t mla_work_key(const MlaWork &w);

// o: [T, nh * dv] bf16 (see above); x: [T, H] bf16, the attention norm's output. Writes the
// batch's rows into L.cache first. Captures fine in a CUDA graph.
int mla_forward(const Gemms &g, MlaWork &w, const MlaModel &m, const MlaLayer &L, const MlaStep &s,
                const bf16 *x, bf16 *o, cudaStream_t st, char *err);

}  // namespace fgcu
