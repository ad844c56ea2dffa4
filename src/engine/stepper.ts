/**
 * The stepper applies a finished pass: computed tokens catch up by each row's numTokens, rows
 * that sampled get their token appended and their stop conditions checked, and finishing
 * frees the blocks at once. abort() does the same for one sequence at any point.
 */
import type { KvCacheManager } from "./kvCache/kvCacheManager";
import type { SequenceQueues } from "./queues";
import type { Plan } from "./scheduler/types";
import type { Sequence, SequenceFinishReason } from "./sequence";
import { checkStop } from "./stop";
import type { StopConfig, StopStringHook } from "./stop";

/** What applying a step touches: the queues, the pool and the stop rules. */
export interface StepperContext {
  readonly queues: SequenceQueues;
  readonly blocks: KvCacheManager;
  readonly stop: StopConfig;
  readonly stopStringHook?: StopStringHook;
}

/**
 * The sampled ids of a pass by sample row (fg_batch's rows): plan entry i that wanted a token
 * sampled it in its last row, rowIndptr[i + 1] - 1.
 */
export interface SampledRows {
  readonly rowIndptr: ArrayLike<number>;
  readonly ids: ArrayLike<number>;
}

/** One sampled token of one sequence. */
export interface TokenEvent {
  readonly seq: Sequence;
  /** The sample row that drew it (index into the pass's ids, logprobs...). */
  readonly row: number;
  readonly tokenId: number;
  /** Set when this token ended the sequence. */
  readonly finishReason: SequenceFinishReason | null;
}

/**
 * Applies the pass `plan` described, given the sampled ids of its rows. Entries of sequences
 * aborted during the pass are skipped (their blocks are gone).
 */
export function applyStep(plan: Plan, sampled: SampledRows, ctx: StepperContext): TokenEvent[] {
  const events: TokenEvent[] = [];
  const entries = plan.entries;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const seq = e.seq;
    if (seq.status === "finished") continue;
    if (seq.numComputedTokens !== e.contextLen) {
      throw new Error(`applyStep: sequence ${seq.id} computed ${seq.numComputedTokens}, the plan started at ${e.contextLen}`);
    }
    seq.numComputedTokens += e.numTokens;
    if (!e.wantsToken) continue;
    const row = sampled.rowIndptr[i + 1]! - 1;
    const tokenId = sampled.ids[row]!;
    seq.appendOutput(tokenId);
    const stop = checkStop(seq, tokenId, ctx.stop, ctx.stopStringHook);
    if (stop !== null) {
      seq.stopReason = stop.stopReason;
      finishSequence(seq, stop.finishReason, ctx);
    }
    events.push({ seq, row, tokenId, finishReason: seq.finishReason });
  }
  return events;
}

/** Finishes `seq`: frees its blocks and takes it off the queues. */
export function finishSequence(seq: Sequence, reason: SequenceFinishReason, ctx: StepperContext): void {
  ctx.blocks.free(seq.id);
  ctx.queues.remove(seq);
  seq.finish(reason);
}

/** Aborts the live sequence `seqId` wherever it is; returns it, or null if none is live. */
export function abort(seqId: number, ctx: StepperContext): Sequence | null {
  const seq = ctx.queues.get(seqId);
  if (seq === undefined) return null;
  finishSequence(seq, "abort", ctx);
  return seq;
}
