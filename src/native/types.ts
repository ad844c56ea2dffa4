/** Public types of the native binding (see engine.ts for the class that uses them). */

export type Backend = "cpu" | "cuda";
/** Tensor element types (fg_dtype); F8_E4M3 only with scales ({@link WeightScales}). */
export type DType = "F32" | "F16" | "BF16" | "F8_E4M3";

/**
 * The scales of a quantized weight [rows, cols] (fg_engine_load_quantized_tensor): one fp32 scale
 * per [blockRows, blockCols] block of a row-major grid, 0 standing for the whole dimension, and
 *   w[r, c] = e4m3(data[r, c]) * values[floor(r / blockRows) * ceil(cols / blockCols) + floor(c / blockCols)]
 * Per tensor: blocks (0, 0); per output channel: (1, 0); DeepSeek-V3 blocks: (128, 128).
 */
export interface WeightScales {
  values: Float32Array;
  blockRows: number;
  blockCols: number;
  /** The checkpoint's static activation scale (activation_scheme "static"); absent or 0 = dynamic. */
  inputScale?: number;
}

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
  /**
   * "auto" (default): the backend's dtype (CPU fp32, CUDA bf16). "fp8": E4M3 of value / scale per
   * layer (the CPU stores fp32 values rounded so; CUDA refuses it for now).
   */
  kvCacheDtype?: "auto" | "fp8";
  /** fp8: per-layer K and V scales [num_layers] (the checkpoint's k_scale / v_scale); absent = 1.0. */
  kScales?: Float32Array;
  vScales?: Float32Array;
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
 *
 * Sample rows (see fg_batch in fastgen.h): the tokens whose logits the pass returns, a CSR per
 * sequence. Row r reads token rowTokens[r] and predicts the position after it; it is sampled
 * (rowTargets absent or -1) or scored against the id rowTargets[r] (prompt logprobs).
 */
export interface StepBatch {
  tokenIds: Int32Array;
  positions: Int32Array;
  cuSeqlens: Int32Array;
  contextLens: Int32Array;
  blockIndptr: Int32Array;
  blockIndices: Int32Array;
  /** [numSeqs + 1] sequence s owns rows rowIndptr[s] .. rowIndptr[s + 1]; numRows = rowIndptr[numSeqs]. */
  rowIndptr: Int32Array;
  /** [numRows] the token (index into the pass, within its sequence, increasing) of each row. */
  rowTokens: Int32Array;
  /** [numRows] -1 = sample, an id = score it; absent = every row sampled. */
  rowTargets?: Int32Array;
  /** [numRows] the mask of each row (index into masks) or -1; absent = no masks. */
  rowMasks?: Int32Array;
  /** Allowed-token bitmasks of ceil(vocab / 32) words each; bit id % 32 of word id / 32 = allowed. */
  masks?: Uint32Array;
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
  /** Leading prompt ids of each sequence's penalty list (repetition penalty only); absent = 0. */
  penaltyPromptLens?: Int32Array;
  /**
   * [numSeqs] the engine slot keeping each sequence's penalty list, or -1 (fg_batch
   * penalty_slots): with a slot, the penalty CSR holds only the ids after the first
   * penaltySlotKeep[s] the slot keeps, and penaltyPromptLens counts the prompt ids among them.
   */
  penaltySlots?: Int32Array;
  penaltySlotKeep?: Int32Array;
  logitBiasIndptr?: Int32Array;
  logitBiasIds?: Int32Array;
  logitBiasValues?: Float32Array;
  /** Top logprobs per row, 0..20. */
  numLogprobs?: number;
  returnLogits?: boolean;
}

/**
 * The sample rows' masks when they arrive after the pass was launched (fg_step_late): what
 * StepBatch.rowMasks / masks would hold. The launched batch then carries none.
 */
export interface LateMasks {
  /** [numRows] the mask of each row (index into masks) or -1. */
  rowMasks: Int32Array;
  /** Allowed-token bitmasks of ceil(vocab / 32) words each. */
  masks: Uint32Array;
}

/** Per sample row. Logprobs are those of the raw logits (before penalties, bias, mask, temperature). */
export interface StepResult {
  /** [numRows] the sampled id, or the scored row's target. */
  ids: Int32Array;
  /** [numRows] log-softmax at ids[r]. */
  logprobs: Float32Array;
  /** [numRows * numLogprobs], descending per row. */
  topIds?: Int32Array;
  topLogprobs?: Float32Array;
  /** [numRows * vocab] raw logits of each row. */
  logits?: Float32Array;
}
