/** Public types of the native binding (see engine.ts for the class that uses them). */

export type Backend = "cpu" | "cuda";
export type DType = "F32" | "F16" | "BF16";

/** KV pool sizing for finalize(); all optional (fg_kv_config). */
export interface KvConfig {
  /** Tokens per block (default 16). */
  blockSize?: number;
  /** Explicit block count; else sized from maxKvBytes / memoryFraction. */
  numBlocks?: number;
  /** Share of free memory for the pool (GPU; CPU uses it on available RAM, default 0.5). */
  memoryFraction?: number;
  /** CPU: cap on the pool in bytes when numBlocks is not given. */
  maxKvBytes?: number;
}

export interface EngineInfo {
  numBlocks: number;
  blockSize: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  backend: Backend;
  numThreads: number;
  weightBytes: number;
  kvBytes: number;
}

/**
 * One forward pass over a ragged batch (fg_batch). numTokens = tokenIds.length and
 * numSeqs = cuSeqlens.length - 1; per-sequence arrays have numSeqs entries.
 */
export interface StepBatch {
  tokenIds: Int32Array;
  positions: Int32Array;
  cuSeqlens: Int32Array;
  contextLens: Int32Array;
  blockIndptr: Int32Array;
  blockIndices: Int32Array;
  wantsToken: Int32Array;
  temperature: Float32Array;
  topP: Float32Array;
  topK: Int32Array;
  minP: Float32Array;
  seed: BigUint64Array;
  presencePenalty?: Float32Array;
  frequencyPenalty?: Float32Array;
  repetitionPenalty?: Float32Array;
  penaltyIndptr?: Int32Array;
  penaltyIds?: Int32Array;
  /** Leading prompt ids of each row's penalty list (repetition penalty only); absent = 0. */
  penaltyPromptLens?: Int32Array;
  /** Prompt logprobs: [numTokens] the id whose logprob is wanted after each token, or -1 (CPU and CUDA). */
  nextTokenIds?: Int32Array;
  logitBiasIndptr?: Int32Array;
  logitBiasIds?: Int32Array;
  logitBiasValues?: Float32Array;
  /** Top logprobs per sampled token, 0..20. */
  numLogprobs?: number;
  returnLogits?: boolean;
}

/** Per sequence; entries of sequences that did not want a token hold -1 / NaN. */
export interface StepResult {
  sampledIds: Int32Array;
  sampledLogprobs: Float32Array;
  /** [numSeqs * numLogprobs], descending per sequence. */
  topIds?: Int32Array;
  topLogprobs?: Float32Array;
  /** [numSeqs * vocab] raw logits of each sampling sequence's last token. */
  logits?: Float32Array;
  /** With StepBatch.nextTokenIds: [numTokens] logprob of each token's next id (NaN where -1). */
  nextTokenLogprobs?: Float32Array;
  /** [numTokens * numLogprobs] top alternatives at each such token. */
  nextTopIds?: Int32Array;
  nextTopLogprobs?: Float32Array;
}
