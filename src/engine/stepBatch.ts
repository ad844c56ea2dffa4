/**
 * StepBatch: one forward pass as flat typed arrays, field for field the `fg_batch` of
 * libfastgen/include/fastgen.h (defined once, in src/native/types.ts; a type-only import, so
 * the engine core does not load the FFI layer). num_tokens = tokenIds.length.
 *
 *   tokens of the pass:  | seq0 chunk (5) | seq1 decode (1) | seq2 chunk (3) |
 *   cuSeqlens:           0                5                 6                9
 *   positions of seq s:  contextLens[s] .. contextLens[s] + n - 1
 *   block table of s:    blockIndices[blockIndptr[s] .. blockIndptr[s + 1])
 */
export type { StepBatch } from "../native/types";
