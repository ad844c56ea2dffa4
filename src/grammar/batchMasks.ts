/**
 * BatchMasks: puts the grammar masks of a pass into its StepBatch's mask slot (fg_batch
 * row_masks + masks). Each sequence with a grammar and a sampled row gets one mask, on that row
 * (a sequence's sampled row is its last, rowIndptr[i + 1] - 1); every other row reads -1, no mask.
 * Buffers are kept between steps and grown by doubling, like StepBatchBuilder's.
 *
 *   rowMasks: [numRows]             mask index or -1
 *   masks:    [numMasks * words]    words = ceil(vocab / 32)
 */
import type { StepBatch } from "../native/types";
import type { SequenceGrammar } from "./sequenceGrammar";

/** What the builder needs to know of one entry of the plan. */
export interface MaskedEntry {
  readonly wantsToken: boolean;
  readonly seq: { readonly id: number; readonly outputIds: readonly number[] };
}

export class BatchMasks {
  private rowMasks = new Int32Array(256);
  private masks = new Uint32Array(0);

  constructor(private readonly words: number) {}

  /**
   * Adds the masks of `entries` (the plan, in batch order) to `batch`; `grammarOf` gives a
   * sequence's grammar or undefined. Leaves the batch unmasked when no row needs a mask.
   */
  attach(batch: StepBatch, entries: readonly MaskedEntry[], grammarOf: (seqId: number) => SequenceGrammar | undefined): void {
    let numMasks = 0;
    for (const e of entries) if (e.wantsToken && grammarOf(e.seq.id)) numMasks++;
    if (numMasks === 0) return;
    const numRows = batch.rowTokens.length;
    if (this.rowMasks.length < numRows) this.rowMasks = new Int32Array(Math.max(numRows, this.rowMasks.length * 2));
    if (this.masks.length < numMasks * this.words) this.masks = new Uint32Array(Math.max(numMasks, (this.masks.length / this.words) * 2) * this.words);
    const rowMasks = this.rowMasks.subarray(0, numRows);
    rowMasks.fill(-1);
    let k = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const g = e.wantsToken ? grammarOf(e.seq.id) : undefined;
      if (!g) continue;
      g.syncTo(e.seq.outputIds); // no-op unless the outputs moved without it (recompute, rollback)
      const mask = g.maskNow();
      if (mask.length !== this.words) throw new Error(`BatchMasks: a mask of ${mask.length} words, the batch has ${this.words}`);
      this.masks.set(mask, k * this.words);
      rowMasks[batch.rowIndptr[i + 1]! - 1] = k++;
    }
    batch.rowMasks = rowMasks;
    batch.masks = this.masks.subarray(0, numMasks * this.words);
  }
}
