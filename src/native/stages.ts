/**
 * Test hooks of libfastgen: one stage of fg_step (paged attention, latent attention, sampling) on
 * host arrays, on the CPU or CUDA backend, so test/gpu can hold each CUDA op against its CPU twin.
 */
import { FastgenError, Status } from "./errors";
import { check, lib } from "./lib";
import { addr, numRows, packBatch, packOutputs } from "./structs";
import type { Backend, StepBatch, StepResult } from "./types";

const code = (b: Backend) => (b === "cuda" ? 1 : 0);

/** Shapes of a paged attention call (see fg_paged_attention in fastgen.h). */
export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  numBlocks: number;
  /** Sliding window; 0 = none. */
  window: number;
  /** Softmax scale; default 1 / sqrt(headDim). */
  scale?: number;
  /** Attention logit softcap; 0 = none. */
  softcap?: number;
  /** CUDA: force this many key splits; 0 = automatic. */
  splits?: number;
  /**
   * An FP8 KV cache (fg_paged_attention_fp8): kCache / vCache hold the values to store, kept as
   * e4m3(x / scale) and read back times the scale, as an engine with --kv-cache-dtype fp8 does
   * (its scale is then 1 / sqrt(headDim) and its kernel "auto").
   */
  kvFp8?: { kScale: number; vScale: number };
  /**
   * CUDA kernel of prompt-chunk tiles: "auto" as the engine (device and FASTGEN_ATTN_HOPPER),
   * "mma" the mma.sync kernel, "hopper" the sm_90a wgmma kernel, "hopper-serial" the same
   * without GEMM/softmax overlap (both UNSUPPORTED where they cannot run the shape).
   */
  kernel?: AttentionKernel;
}

const KERNELS = { auto: 0, mma: 1, hopper: 2, "hopper-serial": 3 } as const;
/** Kernel choices of AttentionShape. */
export type AttentionKernel = keyof typeof KERNELS;

/**
 * out: [numTokens, numHeads, headDim] = attention of q over the paged cache.
 * q: [numTokens, numHeads, headDim]; kCache, vCache: [numBlocks, blockSize, numKvHeads, headDim].
 */
export function pagedAttention(backend: Backend, batch: StepBatch, q: Float32Array, kCache: Float32Array,
  vCache: Float32Array, shape: AttentionShape): Float32Array {
  const T = batch.tokenIds.length;
  const cacheLen = shape.numBlocks * shape.blockSize * shape.numKvHeads * shape.headDim;
  if (q.length < T * shape.numHeads * shape.headDim || kCache.length < cacheLen || vCache.length < cacheLen)
    throw new FastgenError(Status.INVALID_ARGUMENT, "pagedAttention: q or cache arrays too short");
  const out = new Float32Array(Math.max(1, T * shape.numHeads * shape.headDim));
  const packed = packBatch(batch, 0);
  if (shape.kvFp8) {
    if ((shape.scale !== undefined && shape.scale !== 1 / Math.sqrt(shape.headDim)) || (shape.kernel ?? "auto") !== "auto")
      throw new FastgenError(Status.INVALID_ARGUMENT, "pagedAttention: kvFp8 runs with the default scale and kernel (fg_paged_attention_fp8)");
    check(lib().fg_paged_attention_fp8(code(backend), packed, q, kCache, vCache, out, shape.numHeads, shape.numKvHeads,
      shape.headDim, shape.blockSize, shape.numBlocks, shape.window, shape.splits ?? 0, shape.softcap ?? 0,
      shape.kvFp8.kScale, shape.kvFp8.vScale));
  } else {
    check(lib().fg_paged_attention(code(backend), packed, q, kCache, vCache, out, shape.numHeads,
      shape.numKvHeads, shape.headDim, shape.blockSize, shape.numBlocks, shape.window,
      shape.scale ?? 1 / Math.sqrt(shape.headDim), shape.softcap ?? 0, shape.splits ?? 0, KERNELS[shape.kernel ?? "auto"]));
  }
  return out;
}

/** Shapes of a latent attention call (see fg_mla_attention in fastgen.h). */
export interface MlaAttentionShape {
  numHeads: number;
  /** kv_lora_rank: values are the first `latent` of each cached row. */
  latent: number;
  /** qk_rope_head_dim: a cached row is latent + rope wide. */
  rope: number;
  blockSize: number;
  numBlocks: number;
  /** Sliding window; 0 = none. */
  window: number;
  scale: number;
  /** Attention logit softcap; 0 = none. */
  softcap?: number;
  /** CUDA: force this many key splits; 0 = automatic. */
  splits?: number;
  /** An FP8 KV cache (fg_mla_attention_fp8): rows stored as e4m3(x / kvScale), read back times it. */
  kvFp8?: { kvScale: number };
}

/**
 * out: [numTokens, numHeads, latent] = DeepSeek's latent attention of the absorbed queries
 * q: [numTokens, numHeads, latent + rope] over cache: [numBlocks, blockSize, latent + rope].
 */
export function mlaAttention(backend: Backend, batch: StepBatch, q: Float32Array, cache: Float32Array,
  shape: MlaAttentionShape): Float32Array {
  const T = batch.tokenIds.length, D = shape.latent + shape.rope;
  if (q.length < T * shape.numHeads * D || cache.length < shape.numBlocks * shape.blockSize * D)
    throw new FastgenError(Status.INVALID_ARGUMENT, "mlaAttention: q or cache array too short");
  const out = new Float32Array(Math.max(1, T * shape.numHeads * shape.latent));
  const packed = packBatch(batch, 0);
  const args = [code(backend), packed, q, cache, out, shape.numHeads, shape.latent, shape.rope, shape.blockSize,
    shape.numBlocks, shape.window, shape.scale, shape.softcap ?? 0, shape.splits ?? 0] as const;
  if (shape.kvFp8) check(lib().fg_mla_attention_fp8(...args, shape.kvFp8.kvScale));
  else check(lib().fg_mla_attention(...args));
  return out;
}

/** fg_step's sampling on given logits [numRows, vocab]: row r of logits is sample row r. */
export function sampleLogits(backend: Backend, batch: StepBatch, logits: Float32Array, vocab: number): StepResult {
  const packed = packBatch(batch, vocab);
  const rows = numRows(batch);
  if (logits.length < rows * vocab)
    throw new FastgenError(Status.INVALID_ARGUMENT, `sampleLogits: logits need ${rows * vocab} values`);
  const L = batch.numLogprobs ?? 0;
  const result: StepResult = { ids: new Int32Array(rows).fill(-1), logprobs: new Float32Array(rows).fill(NaN) };
  if (L > 0) {
    result.topIds = new Int32Array(rows * L).fill(-1);
    result.topLogprobs = new Float32Array(rows * L).fill(NaN);
  }
  const outputs = packOutputs({ ids: addr(result.ids), logprobs: addr(result.logprobs),
    top_ids: addr(result.topIds), top_logprobs: addr(result.topLogprobs) });
  // bun:ffi cannot point at an empty array; the library reads no logits without rows.
  check(lib().fg_sample_logits(code(backend), packed, logits.length ? logits : new Float32Array(1), vocab, outputs));
  return result;
}
