// fg_run_op (fastgen.h): one op of the forward pass on host buffers, the same on every backend,
// so each CUDA kernel has a CPU twin to be held against (test/gpu/ops.test.ts). The arguments of
// each op, in order (dims | params | bufs; "?" may be NULL; i32 / f64 arrays marked, else fp32):
//
// FG_OP_ROPE         T, nh, nkv, hd, rot, block_size, num_blocks | attn_factor, eps |
//                    qkv [T, (nh + 2 nkv) hd] in/out, positions i32 [T], blocks i32 [T],
//                    inv_freq f64 [rot / 2]?, bias [(nh + 2 nkv) hd]?, q_norm [hd]?, k_norm [hd]?,
//                    k_cache, v_cache [num_blocks, block_size, nkv, hd] in/out
//   q and k heads (+ bias), then with q_norm and k_norm a per-head RMSNorm (eps) times them, then
//   RoPE on each head's first rot dims (rotate_half pairs i, i + rot / 2; angle position *
//   inv_freq[i], cos and sin times attn_factor; no inv_freq: none). q goes back into qkv; k and
//   v (+ bias) go to cache slot positions[t] % block_size of block blocks[t]; qkv's k and v stay.
// FG_OP_NORM         R, H, src_rows, kind, write_back | eps |
//                    h [src_rows, H] in/out, rows i32 [R]?, add_a [H]?, add_b [H]?, w [H]?,
//                    b [H]?, out [R, H]
//   x = h[rows[r] or r] + add_a + add_b; write_back: that row of h = x (rows distinct then);
//   out[r] = norm(x) * w (+ b): kind 0 RMSNorm, 1 LayerNorm (+ b), 2 none (out = x; w unused).
// FG_OP_POST_NORM    R, H, kind | eps | h [R, H] in/out, add [H]?, w [H], b [H]?, out [R, H]
//   h[r] = norm(h[r] + add) * w (+ b) (kind 0 RMSNorm, 1 LayerNorm), and out[r] the same.
// FG_OP_SANDWICH_NORM R, H | eps | h [R, H] in/out, y [R, H], bias [H]?, w_post [H], w_next [H]?,
//                    out [R, H]?
//   h[r] += rmsnorm(y[r] + bias) * w_post; with w_next, out[r] = rmsnorm(h[r]) * w_next.
// FG_OP_ACTIVATION   T, I, kind | - | in, bias?, out [T, I]
//   kind 0, 1, 2 gated silu, gelu, gelu_tanh: in [T, 2I] with columns interleaved (gate_i, up_i),
//   bias [2I] alike, out = act(gate + bias) * (up + bias); 3, 4, 5 gelu, gelu_tanh, relu:
//   in [T, I], bias [I], out = act(in + bias). GELU is erf's; gelu_tanh its tanh approximation.
// FG_OP_EMBED        T, H, vocab_begin, vocab_rows, num_positions | scale |
//                    embed [vocab_rows, H], token_ids i32 [T], positions i32 [T]?,
//                    pos_embed [num_positions, H]?, h [T, H] out
//   h[t] = embed[token - vocab_begin] * scale for a token in [vocab_begin, + vocab_rows) (a
//   vocabulary shard; 0 for any other), + pos_embed[positions[t]] when given.
// FG_OP_POS_EMBED    T, H, num_positions | - | pos_embed [num_positions, H], positions i32 [T],
//                    h [T, H] in/out
//   h[t] += pos_embed[positions[t]].
// FG_OP_BIAS_ROWS    R, N | - | y [R, N] in/out, bias [N]            y[r] += bias
// FG_OP_SOFTCAP      n | cap | x [n] in/out                           x = cap * tanh(x / cap)
// FG_OP_MOE_ROUTE    T, E, k, renormalize, pad, num_groups, topk_groups | scale |
//                    logits [T, E], expert_ids i32 [T, k] out, weights [T, k] out,
//                    expert_offsets i32 [E + 1] out, token_slots i32 [T k] out
//   Each token's top-k experts by logit, best first (ties: lower id), weights the softmax over
//   all E (renormalize 0) or over the k (1), times scale (DeepSeek's routed_scaling_factor);
//   group-limited when num_groups > 1 (DeepSeek-V2): the E experts are num_groups groups of
//   consecutive ids and only those of the topk_groups groups with the highest best logit (ties:
//   lower group) compete. Then slots t k + j grouped by expert in token order:
//   expert e's are token_slots[expert_offsets[e] .. expert_offsets[e + 1]). pad: the device
//   starts each expert's rows at a multiple of pad (moe.cu); the lists come back compact anyway.
// FG_OP_EXPERT_GATE  T, H, I | - | x [T, H], gate [H], act [T, I] in/out
//   act[t] *= sigmoid(x[t] . gate) (the shared expert's gate, before its down projection).
#pragma once
#include <cstdint>

#include "fastgen.h"

namespace fg {

// How many of each argument an op takes.
struct OpArity {
  const char *name;
  int32_t dims, params, bufs;
};

// Throws FG_ERR_INVALID_ARGUMENT (message "fg_run_op <name>: ...") unless op is one of fg_op,
// the counts are its own, and its dims, buffers and the index arrays among them fit.
void check_op(int32_t op, const int32_t *dims, int32_t num_dims, const float *params, int32_t num_params,
              void *const *bufs, int32_t num_bufs);
const OpArity &op_arity(int32_t op);  // op checked

}  // namespace fg
