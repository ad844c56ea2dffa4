/**
 * Allowed-token masks of a pass's sampled rows (fg_batch's row_masks / masks, see fastgen.h).
 * Constraints plug in as RowMaskSources (a static allowed set: allowedTokens.ts; a grammar: its
 * own source); the builder asks each one per sampled row and writes the batch's masks:
 *
 *   masks:     | mask 0 (words) | mask 1 (words) | ...        words = ceil(vocab / 32)
 *   rowMasks:  [numRows] the index of each row's mask, -1 = none (scored rows: always -1)
 *
 * A row with one source's mask points at that mask (rows given the same array share one slot:
 * the n samples of a request); a row with several gets their intersection. A pass where no row
 * has a mask carries none (rowMasks/masks absent), so unconstrained batches cost one call per row.
 */
import type { Plan, PlanEntry } from "./scheduler/types";
import type { Sequence } from "./sequence";
import type { StepBatch } from "./stepBatch";
import type { LateMasks } from "../native/types";

/** Says which tokens a sequence may sample; one per kind of constraint. */
export interface RowMaskSource {
  /**
   * The allowed-token bitmask (ceil(vocab / 32) words, bit id % 32 of word id / 32 = allowed) of a
   * sampled row of `seq`, or null when it constrains nothing. `ahead` counts the sequence's sampled
   * rows before this one in the pass: 0 for its next token, 1.. for speculative verification rows,
   * which follow the first `ahead` tokens of `draft` (the plan entry's; absent without one).
   * The array is only read during the call's build; the source may reuse it afterwards.
   */
  maskFor(seq: Sequence, ahead: number, draft?: Int32Array): Uint32Array | null;
}

/** Words of one mask over `vocab` ids. */
export const maskWords = (vocab: number): number => Math.ceil(vocab / 32);

/** Fills a batch's rowMasks and masks from its sources, into buffers kept between steps. */
export class RowMaskBuilder {
  readonly words: number;
  private rowMasks = new Int32Array(256);
  private masks: Uint32Array;
  private readonly found: Uint32Array[] = [];
  /** The last maskOf() made a fresh intersection (not a source's own array, so never shared). */
  private intersected = false;

  constructor(vocab: number, private readonly sources: readonly RowMaskSource[]) {
    this.words = maskWords(vocab);
    this.masks = new Uint32Array(this.words * 4);
  }

  /** Sets batch.rowMasks / batch.masks when some sampled row of `plan` is constrained. */
  apply(plan: Plan, batch: StepBatch): void {
    const m = this.masksOf(plan, batch);
    if (m === null) return;
    batch.rowMasks = m.rowMasks;
    batch.masks = m.masks;
  }

  /**
   * The rows' masks of `plan`'s batch, null when no sampled row is constrained. A pass launched
   * without them takes them at finish (fg_step_finish's late masks); views of buffers kept between
   * steps, valid until the next call.
   */
  masksOf(plan: Plan, batch: StepBatch): LateMasks | null {
    if (this.sources.length === 0) return null;
    const { rowIndptr, rowTargets } = batch;
    const entries = plan.entries;
    const numRows = rowIndptr[entries.length]!;
    let slots: Map<Uint32Array, number> | null = null;
    let numMasks = 0;
    for (let i = 0; i < entries.length; i++) {
      let ahead = 0;
      for (let r = rowIndptr[i]!; r < rowIndptr[i + 1]!; r++) {
        if (rowTargets && rowTargets[r]! >= 0) {
          if (slots) this.rowMasks[r] = -1;
          continue;
        }
        const mask = this.maskOf(entries[i]!, ahead++);
        if (mask === null) {
          if (slots) this.rowMasks[r] = -1;
          continue;
        }
        if (slots === null) {
          slots = new Map();
          if (this.rowMasks.length < numRows) this.rowMasks = new Int32Array(Math.max(numRows, this.rowMasks.length * 2));
          this.rowMasks.fill(-1, 0, r);
        }
        let slot = slots.get(mask);
        if (slot === undefined) {
          slot = numMasks++;
          this.ensureMasks(numMasks);
          this.masks.set(mask.subarray(0, this.words), slot * this.words);
          if (!this.intersected) slots.set(mask, slot);
        }
        this.rowMasks[r] = slot;
      }
    }
    if (slots === null) return null;
    return { rowMasks: this.rowMasks.subarray(0, numRows), masks: this.masks.subarray(0, numMasks * this.words) };
  }

  /** The row's mask: the one source's array, or the AND of several in a scratch array; null = none. */
  private maskOf(entry: PlanEntry, ahead: number): Uint32Array | null {
    const found = this.found;
    found.length = 0;
    this.intersected = false;
    for (const source of this.sources) {
      const m = source.maskFor(entry.seq, ahead, entry.draft);
      if (m !== null) found.push(m);
    }
    if (found.length <= 1) return found[0] ?? null;
    this.intersected = true;
    const out = found[0]!.slice(0, this.words);
    for (let k = 1; k < found.length; k++) {
      const m = found[k]!;
      for (let w = 0; w < this.words; w++) out[w] = out[w]! & m[w]!;
    }
    return out;
  }

  private ensureMasks(numMasks: number): void {
    const need = numMasks * this.words;
    if (this.masks.length >= need) return;
    const grown = new Uint32Array(Math.max(need, this.masks.length * 2));
    grown.set(this.masks);
    this.masks = grown;
  }
}
