// Paged latent attention on the tensor cores (FASTGEN_MLA_KERNEL=mma; cuda/attention_mla_mma.cu):
// the same contract and results (within bf16 rounding) as attention_mla.cu's fp32 kernel, which
// runs otherwise. Absorbed MLA is multi-query attention with one shared K row per position
// ([latent | rope], every head) whose latent part is also the V row, so the query heads of a
// token (and, for prompt chunks, of a few consecutive tokens of one sequence) become the M rows
// of one mma.sync m16n8k16 GEMM against each key tile: S = Q K^T over latent + rope, fp32 online
// softmax, O += P V with P in bf16, as attention.cu's flash kernels do.
#pragma once
#include "cuda/attention_mla.cuh"

namespace fgcu {

// True when FASTGEN_MLA_KERNEL is "mma", "mma16" or "mma64" (read once a process).
bool mla_mma_takes();

// The attention kernel alone: writes a.out (splits == 1) or a.part_o / a.part_lse in
// attention_mla.cu's layout (splits > 1), whose combine kernel the caller then runs. Widths as
// mla_attention_check allows.
int mla_attention_mma(const MlaAttnArgs &a, cudaStream_t stream, char *err);

}  // namespace fgcu
