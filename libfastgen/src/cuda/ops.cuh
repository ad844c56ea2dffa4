// The CUDA backend's small fused kernels (norms, RoPE + KV write, activations, embedding, bias).
// CPU twins: cpu/norm.cpp, cpu/rope.cpp + cpu/attention.cpp (write_kv_cache), cpu/mlp.cpp,
// cpu/forward.cpp (embedding). Each host function launches on `stream` and returns 0 or an
// fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

enum NormOp { kNormRms = 0, kNormLayer = 1, kNormNone = 2 };

// For r in [0, R): src = h + (rows ? rows[r] : r) * H (fp32 residual row).
//   row = src + add_a + add_b        (biases still owed to the residual; each may be null)
//   if write_back: src = row         (the residual now holds them)
//   out[r] = norm(row) * w (+ b)     bf16 [R, H]; kNormNone: out = row
int norm_rows(float *h, const int *rows, int R, int H, const float *add_a, const float *add_b,
              bool write_back, NormOp op, const float *w, const float *b, float eps, bf16 *out,
              cudaStream_t stream, char *err);

// Post-norm (norm_position "post"): h[r] = norm(h[r] + add_a) * w (+ b) in place (fp32), and
// out[r] = the same in bf16.
int norm_rows_in_place(float *h, int R, int H, const float *add_a, NormOp op, const float *w, const float *b,
                       float eps, bf16 *out, cudaStream_t stream, char *err);

// h[t, :] += pos_embed[positions[t], :] (learned positions after embed_proj_in).
int add_pos_embed(const float *pos_embed, const int *positions, int T, int H, float *h, cudaStream_t stream,
                  char *err);

// qkv: [T, (nh + 2 nkv) * hd] bf16, in place: q and k heads get + bias, then RoPE on their first
// rot dims (rotate_half pairing i <-> i + rot/2; angle = position * inv_freq[i] in double);
// k and v (+ bias) are then written to their cache slots. inv_freq: [rot / 2] device (null or
// rot == 0: no rotation, learned positions). The q part stays in qkv for attention.
//   cache: [num_blocks, nkv, block_size, hd]
int qkv_rope_kv_write(bf16 *qkv, const float *bias, const int *positions, const int *token_seq,
                      const int *block_indptr, const int *block_indices, const double *inv_freq,
                      int T, int nh, int nkv, int hd, int rot, int block_size, bf16 *k_cache,
                      bf16 *v_cache, cudaStream_t stream, char *err);

enum ActKind { kGatedSilu, kGatedGelu, kGatedGeluTanh, kGelu, kGeluTanh, kRelu };

// gated:  in [T, 2I], columns interleaved (gate_i, up_i) -> out[t, i] = act(gate + gb) * (up + ub)
// plain:  in [T, I]                                     -> out[t, i] = act(in + b)
// bias: [2I] interleaved like the columns, or [I]; may be null.
int activation(const bf16 *in, const float *bias, bf16 *out, int T, int I, ActKind kind,
               cudaStream_t stream, char *err);

// h[t, :] = embed[token_ids[t] - vocab_begin, :] (+ pos_embed[positions[t], :]), fp32 [T, H].
// embed holds vocab rows [vocab_begin, vocab_begin + vocab_rows) (a tensor-parallel shard); a
// token outside them contributes zeros, so the sum over ranks is the whole lookup.
int embed_tokens(const bf16 *embed, const float *pos_embed, const int *token_ids,
                 const int *positions, int T, int H, int vocab_begin, int vocab_rows, float *h,
                 cudaStream_t stream, char *err);

// y[r, :] += bias, y: [R, N] fp32.
int add_bias_rows(float *y, const float *bias, int R, int N, cudaStream_t stream, char *err);

}  // namespace fgcu
