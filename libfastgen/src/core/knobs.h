// The FASTGEN_* environment variables libfastgen reads: one table, read once (at the first
// lookup, all together), printed by `fastgen --help-env` through fg_knobs(). Nothing else in
// libfastgen calls getenv. Plain C, so the CUDA objects (nvcc, libstdc++) include it too.
#pragma once
#include <stdint.h>

// X(id, type, default, meaning): the variable is FASTGEN_<id>. Types:
//   INT   an integer; unset or empty gives the default
//   FLAG  "0" off, "1" on; unset, empty or anything else gives the default
//   STR   text; unset gives the default
#define FG_KNOBS(X)                                                                              \
  X(NUM_THREADS, INT, "0", "CPU backend threads; 0 or below: one per hardware thread")           \
  X(CPU_ISA, STR, "", "cap the CPU kernels' ISA: \"generic\" or \"avx2\" (default: the best found)") \
  X(STEP_OVERLAP, FLAG, "1", "fg_step_launch returns while the forward pass runs (CPU: on a library thread; CUDA: queued), so the host computes masks meanwhile; 0: finish runs the whole step") \
  X(CUDA_GRAPHS, FLAG, "1", "capture decode steps as CUDA graphs")                               \
  X(PIECEWISE_GRAPHS, FLAG, "1", "mixed passes (decodes + a prompt chunk, 17-2048 tokens) as CUDA graphs in pieces between the attentions, captured per token count rounded up to a bucket (cuda/piecewise.cu: dense models, one GPU, bf16 weights); 0: eager. H100 2026-12-07 (7B shape, bench/results/device-wave12-h100.md): 0.97-0.98x eager's time at 64-256 tokens, 1.00-1.02x at 288-1024 (a bucket's pad rows cost what the launches save); served 2600/60 at 1/8/32 clients +1.7/+1.7/+0.4% req/s, 1.5% less device time a pass; test/gpu engine, fixtures, families, overlap, pdl pass with it on") \
  X(PROFILE, FLAG, "0", "device time per op kind, printed to stderr at destroy (graphs off)")    \
  X(PDL, FLAG, "1", "programmatic dependent launch on compute capability 9.0+")                  \
  X(PDL_ATTN, INT, "1", "attention's part in PDL: 0 none, 1 overlaps its start, 2 also lets the next kernel in early") \
  X(GEMV, FLAG, "1", "the GEMV kernel for GEMMs of few rows (off: cuBLASLt for every GEMM)")     \
  X(GEMV_MAX_M, INT, "16", "largest token count the GEMV kernels take (1: the one-token kernel only, cuBLASLt above; at most 16, the default: with one 16-row tile a warp the small-M kernel beats cuBLASLt at 16 tokens too, H100 2026-12-07: 7B decode b=16 5.88-5.89 vs 6.05-6.06 ms at ctx 128, 16 tokens a pass 6.27-6.28 vs 6.56-6.68; with two tiles a warp it had lost, 6.24 vs 5.90)") \
  X(GEMV_SMALL_AT_1, FLAG, "0", "one-token GEMMs through the small-M tensor-core kernel too (a row's result then does not depend on the batch: with ATTN=simple, decode and speculative verification agree bit for bit; slower)") \
  X(GEMV_PERSIST, INT, "1", "small-M GEMV: 1 (the default) a grid of the resident blocks, each looping over 16-row tiles and requesting the next tile's first weights before this one's epilogue (bit-identical; H100 2026-12-07: bf16 decode at batch 2-8 2-3 points of the roofline faster, FP8 b=1 -1.5%); 0 one block a tile; n > 1 at most n blocks (tests)") \
  X(GEMV_STAGED, FLAG, "0", "small-M GEMV, persistent grid: 1 streams each thread's next 256 bytes of weights through shared memory with cp.async (64 KB a block in flight, not the registers' 32: an A/B experiment, off)") \
  X(GEMV_ROWS, INT, "0", "weight rows per warp of the small-M GEMV: 16 (0, the default: faster on an H100, 2026-12-07) or 32 (A/B timing)") \
  X(NORM_FOLD, INT, "0", "decode passes of up to this many tokens (at most 8) fold the RMSNorm before the qkv and gated MLP GEMVs into them (each block recomputes its rows' norm; bit-identical, no norm kernel); 0: off, the default: on an H200 (2026-12-07) folding made decode b=1 4.44 ms against 3.79 (the GEMVs' prologue delays their weight stream more than the norm kernel costs). Plain RMSNorm layers, bf16 weights") \
  X(NORM_DEFER, INT, "0", "decode passes of up to this many tokens (at most 16), plain RMSNorm layers, one GPU: no norm kernel between the GEMVs. One token with bf16 weights: the qkv and gated MLP GEMVs read the residual row and the norm weight and apply the norm's scale to their sums (gemv2.cuh XRmsDeferred); where the small-M kernel runs (bf16 at 2-16 tokens, FP8 at its token counts): the o and down GEMVs also write bf16(h * w) and per-block sums of h^2, which the next GEMV scales its sums by (rms_fold.cuh DeferredNorm). Not bit-identical to the norm kernel; off under FASTGEN_GEMV_SMALL_AT_1 (a token's arithmetic would depend on the pass size). 0: off") \
  X(PREFETCH_O, INT, "0", "decode passes of up to 16 tokens: MiB of each layer's o projection weights the RoPE kernel pulls into L2 (sm_90 bulk prefetch) for the o GEMV after attention, filling DRAM time attention leaves idle; 0: off (an A/B experiment)") \
  X(GEMV_NARROW, INT, "0", "one-token bf16 GEMMs of narrow outputs (N < 8192: o, down): 0 the one-row-a-warp kernel (pipelined under FASTGEN_GEMV_PIPE), 1 the two-rows-a-warp kernel of wide outputs, 2 the small-M tensor-core kernel. H100 2026-12-07 (7B b=1, five pairs in two calls): 1 is 0.3-0.5% faster (5.000-5.015 vs 5.021-5.030 ms at ctx 128), 2 is 2.5% slower; not run on an H200, where pipelining the narrow kernel had paid (so 0 stays)") \
  X(QKV_ROPE, INT, "1", "decode at batch 1, bf16 weights: 1 (the default) the qkv GEMV applies RoPE and writes K/V itself (cuda/rope.cu qkv_gemv_rope: bit-identical, no RoPE kernel on the chain; not with qk-norm), letting attention in once its weights are streamed: H100 7B b=1 -0.05 / -0.01 ms at ctx 128 / 512 (bench/results/device-wave18-h100.md); 2 the same, attention let in at its start (0.05-0.1 ms slower than 1); 3 as 1, and where the small-M kernel takes the pass (bf16 at 2-16 tokens, FP8 at its sizes) its epilogue does RoPE too (cuda/gemv_small.cuh ROPE; an experiment: bit-identical on the CPU model of CUDA, not on an H100, bench/results/device-wave19-h100.md); 0: the GEMV then the RoPE kernel") \
  X(GEMV_PIPE, FLAG, "1", "software-pipelined weight loads in the narrow GEMVs (bf16; FP8 rows longer than one round)") \
  X(FP8_GEMV_MAX_M, INT, "-1", "FP8 weights: GEMMs of up to this many rows (at most 8) run the CUDA-core FP8 GEMV, larger ones the small-M kernel or W8A8 on cuBLASLt; 0: the small-M kernel takes one row too; -1 (default): 1 on GPUs of 4 TB/s peak memory bandwidth or more (H200: GEMV 2.78 ms at 7B b=1 vs 2.91 small-M, 19.2 vs 23-24.5 at 70B), else 0 (H100: small-M 3.18-3.22 ms vs GEMV 3.34-4.21; cuda/fp8_gemm.cu auto_gemv_rows)") \
  X(FP8_SMALL_MAX_M, INT, "8", "FP8 weights: GEMMs above the GEMV's rows (FASTGEN_FP8_GEMV_MAX_M) up to this many (at most 16) run the tensor-core small-M kernel, weight-only (0: off; W8A8 on cuBLASLt above; 8: faster than the GEMV at 2-8 rows, slower than W8A8 at 16, H100 2026-12-07)") \
  X(FP8_SMALL_KDEPTH, INT, "16", "FP8 weights, small-M kernel, per-row scales: k a thread loads from a weight row at once; 16 (default): 16-byte loads, 2 steps of 64 k a pipeline half (bf16's request pattern: half the load instructions and L1 requests a byte, the same bytes and registers in flight); 8: 8-byte loads, 4 steps of 32 k (sums in another order). H200 2026-12-07: 7B decode b=2/4/8 2.91/2.96/3.12 ms with 16 vs 3.19/3.28/3.46 with 8; 70B 24.5/23.0/23.8 vs 27.0/26.8/29.7") \
  X(FP8_GEMV_DEPTH, INT, "1", "FP8 weights, one-token GEMV at 1-2 rows: 1 pipelines only narrow rows longer than one round (FASTGEN_GEMV_PIPE); 2: every shape issues its next round of weight loads before multiplying this one (twice the bytes in flight a warp; bit-identical); measured slower on an H200 (7B decode b=1 2.97 vs 2.80 ms), so 1") \
  X(FP8_LT, FLAG, "1", "FP8 weights: W8A8 cuBLASLt GEMMs above the GEMV's rows (off: dequantize to bf16 and run cuBLASLt bf16)") \
  X(FP8_FAST_ACCUM, FLAG, "1", "FP8 cuBLASLt GEMMs with fast accumulation (off: the tensor cores' partial sums promoted to fp32 periodically)") \
  X(ATTN, STR, "", "\"simple\": the reference attention kernel instead of the tiled ones")        \
  X(ATTN_BM, INT, "128", "query rows per wide attention tile: 128 or 64 (A/B timing)")            \
  X(ATTN_BN, INT, "64", "keys per K/V tile at head_dim 128: 64 or 32 (A/B timing)")               \
  X(ATTN_HOPPER, INT, "1", "prompt-chunk attention on sm_90: 1 the wgmma kernel (cuda/attention_hopper.cu; head_dim 64/128/256, 128-row tiles), 0 the mma.sync kernel, 2 the wgmma kernel without GEMM/softmax overlap (A/B)") \
  X(ATTN_FP8_DIRECT, FLAG, "0", "FP8 KV cache, decode (narrow) attention tiles at head_dim 32/64/96/128: 1 loads E4M3 K/V from global memory straight into registers and widens them into the MMA fragments there (cuda/attention_fp8_direct.cu: no shared-memory staging, no barrier per key tile); 0: the staged kernel. H200 2026-12-07: attention alone 1.08-1.10x at 32 x 4096 and 64 x 2048 but 0.93x at 8 x 4096, engine decode 32 x 4096 unchanged (19.69 vs 19.52 ms), so 0") \
  X(MLA_KERNEL, STR, "mma", "latent attention (DeepSeek MLA): \"mma\" (default) the bf16 tensor-core kernel (cuda/attention_mla_mma.cu), 16 or 64 query rows a CTA chosen by the batch; \"fma\" the fp32 CUDA-core kernel (cuda/attention_mla.cu); \"mma16\" / \"mma64\" force the rows (A/B timing). H100 2026-12-07, V2-Lite widths: mma 2.1-4.6x fma at decode B=1-32, 6.2-10.1x at prefill 512/2048 (bench/results/device-wave12-h100.md); test/gpu mla, families, fixtures pass under it") \
  X(ATTN_MERGE_IN_KERNEL, FLAG, "1", "decode attention's key splits merged by the last CTA of each tile to finish (cuda/attn_splits.cuh: split counters, no combine kernel), with at least 128 keys a split (0: the combine kernel, 256 keys a split). H100 2026-12-07, 7B decode b=1 at ctx 512: 5.316 / 3.266 ms bf16 / FP8 against 5.368 / 3.311 (bench/results/device-wave15-h100.md)") \
  X(ATTN_SPLITS, INT, "-1", "decode key splits: -1 chooses by occupancy, N >= 0 forces max(N, 1)") \
  X(ATTN_TIMING, STR, "", "test hook: append the median of 20 attention launches (ms) to this file") \
  X(FP8_TIMING, STR, "", "bench hook: fg_cuda_fp8_linear_host appends the median of 20 launches (ms), each after an L2 flush, to this file") \
  X(SKIP, STR, "", "diagnostic, timing only (every output is wrong): op kinds the CUDA forward leaves out of every pass, comma-separated from norm, qkv, rope, attn, o, gate_up, down (dense layers), to time what each costs on the decode chain (bench/gpu/stepCost.ts)") \
  X(STEP_TIMING, STR, "", "diagnostic: append one line per overlapped CUDA pass (launch, then finish) to this file: the forward's device ms (events), the device idle before the finish's sampling, the host ms from launch to finish and in finish, late masks or not") \
  X(TP_TIMEOUT_MS, INT, "0", "collective wait limit when the spec's collective_timeout_ms is 0 (0: 120 s)") \
  X(TP_FAULT_RANK, INT, "-1", "test hook: this tensor-parallel rank skips its collectives")

#define FG_KNOB_ENUM_(id, type, dflt, meaning) FG_KNOB_##id,
typedef enum fg_knob { FG_KNOBS(FG_KNOB_ENUM_) FG_KNOB_COUNT } fg_knob;
#undef FG_KNOB_ENUM_

#ifdef __cplusplus
extern "C" {
#endif
// The value of an INT knob, or of a FLAG knob as 0/1.
int32_t fg_knob_int(fg_knob k);
// The value of a STR knob ("" when unset and the default is "").
const char *fg_knob_str(fg_knob k);
#ifdef __cplusplus
}
#endif
