/**
 * StepBatch: one forward pass as flat typed arrays, field for field the `fg_batch` of
 * libfastgen/include/fastgen.h. num_tokens = tokenIds.length, num_seqs = contextLens.length.
 *
 * A local copy of the interface src/native exports, so the engine core does not depend on the
 * FFI layer; the two are structurally identical and either can be passed where the other is
 * expected.
 *
 *   tokens of the pass:  | seq0 chunk (5) | seq1 decode (1) | seq2 chunk (3) |
 *   cuSeqlens:           0                5                 6                9
 *   positions of seq s:  contextLens[s] .. contextLens[s] + n - 1
 *   block table of s:    blockIndices[blockIndptr[s] .. blockIndptr[s + 1])
 */
export interface StepBatch {
  /** [num_tokens] */
  tokenIds: Int32Array;
  /** [num_tokens] */
  positions: Int32Array;
  /** [num_seqs + 1] */
  cuSeqlens: Int32Array;
  /** [num_seqs] tokens of each sequence already in the KV cache */
  contextLens: Int32Array;
  /** [num_seqs + 1] */
  blockIndptr: Int32Array;
  /** [blockIndptr[num_seqs]] */
  blockIndices: Int32Array;
  /** [num_seqs] 0 | 1 */
  wantsToken: Int32Array;
  /** [num_seqs] each; 0 = greedy */
  temperature: Float32Array;
  topP: Float32Array;
  topK: Int32Array;
  minP: Float32Array;
  seed: BigUint64Array;
  /** [num_seqs]; absent = 0 */
  presencePenalty?: Float32Array;
  /** [num_seqs]; absent = 0 */
  frequencyPenalty?: Float32Array;
  /** [num_seqs]; absent = 1 */
  repetitionPenalty?: Float32Array;
  /** [num_seqs + 1] CSR over penaltyIds; absent = no penalties */
  penaltyIndptr?: Int32Array;
  penaltyIds?: Int32Array;
  /** [num_seqs + 1] CSR over logitBiasIds / logitBiasValues; absent = no bias */
  logitBiasIndptr?: Int32Array;
  logitBiasIds?: Int32Array;
  logitBiasValues?: Float32Array;
  /** Top-k logprobs per sampled token, 0..20 (one value for the whole pass). */
  numLogprobs?: number;
  /** Return the raw logits row of each sampled token. */
  returnLogits?: boolean;
}
