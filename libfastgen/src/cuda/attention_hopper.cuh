// Paged prefill attention for Hopper (sm_90a): the wide tiles of attention.cuh (128 rows =
// (token, q head of the kv group) pairs of one sequence) on wgmma with warp specialization, in
// place of the mma.sync kernel. Same inputs (AttnArgs, the paged layout, a chunk at any context
// offset, causal, sliding window, soft-capping, scale); head_dim 64, 128 and 256, bf16 K/V.
// Narrow tiles (decode) and every other case stay with attention.cu's kernels.
#pragma once
#include "cuda/attention.cuh"

namespace fgcu {

// Whether the wide tiles of `a` run here: an sm_90 device (this build has sm_90a code), a
// head_dim above, 128-row wide tiles, scale > 0, and FASTGEN_ATTN_HOPPER (0 off, 1 on, the
// default, 2 serial: no GEMM/softmax overlap) or, from the test hook, a.wide_kernel. Any case it
// declines falls back to the mma.sync kernel.
bool attn_hopper_takes(const AttnArgs &a);

// Runs the wide tiles of `a` (attn_hopper_takes(a) must hold); pdl_mode as attention.cu's
// FASTGEN_PDL_ATTN (0 plain launch, 1 launch_k, 2 also lets the next kernel in at the start).
int attn_hopper_wide(const AttnArgs &a, int pdl_mode, cudaStream_t stream, char *err);

}  // namespace fgcu
