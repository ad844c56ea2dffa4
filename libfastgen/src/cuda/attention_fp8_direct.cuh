// Decode (narrow-tile) attention over an FP8 E4M3 KV cache with the K/V rows loaded from global
// memory straight into registers and widened there into the tensor-core fragments
// (FASTGEN_ATTN_FP8_DIRECT=1; cuda/attention_fp8_direct.cu). The staged kernel of attention.cu
// runs otherwise. Same math as it: bf16 MMA, fp32 online softmax, k_scale in the softmax scale,
// v_scale on the output; partial results of key splits in attention.cu's layout (its combine
// kernel merges them).
#pragma once
#include "cuda/attention.cuh"

namespace fgcu {

// True when the knob is on, the cache is FP8 and head_dim is 32, 64, 96 or 128.
bool attn_fp8_direct_takes(const AttnArgs &a);
// The narrow tiles of a (a.num_narrow * a.splits CTAs a KV head). pdl_mode: attention.cu's
// attn_pdl_mode() (0 plain launch, 1 launch_k, 2 launch_k and an early trigger).
int attn_fp8_direct_narrow(const AttnArgs &a, int pdl_mode, cudaStream_t s, char *err);

}  // namespace fgcu
