// RoPE + KV-cache write on the device. CPU twins: cpu/rope.cpp, cpu/attention.cpp
// (write_kv_cache). Launches on `stream`; returns 0 or an fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

// qkv: [T, (nh + 2 nkv) * hd] bf16, in place: q and k heads get + bias, then RoPE on their first
// rot dims (rotate_half pairing i <-> i + rot/2; angle = position * inv_freq[i] in double);
// k and v (+ bias) are then written to their cache slots. inv_freq: [rot / 2] device (null or
// rot == 0: no rotation, learned positions). The q part stays in qkv for attention.
//   cache: [num_blocks, nkv, block_size, hd]
int qkv_rope_kv_write(bf16 *qkv, const float *bias, const int *positions, const int *token_seq,
                      const int *block_indptr, const int *block_indices, const double *inv_freq,
                      int T, int nh, int nkv, int hd, int rot, int block_size, bf16 *k_cache,
                      bf16 *v_cache, cudaStream_t stream, char *err);

}  // namespace fgcu
