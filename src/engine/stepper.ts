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
  /**
   * Speculative decoding: called once per verified draft, after the accepted tokens were
   * appended (and before any other row of the pass). The speculator adapts k and counts; a
   * grammar matcher that advanced through the draft to mask its rows rolls back here to the
   * sequence's accepted output (seq.outputIds).
   */
  readonly onDraftVerified?: (seq: Sequence, numProposed: number, numAccepted: number) => void;
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
    if (e.draft !== undefined) {
      applyDraft(seq, e.draft, sampled.rowIndptr[i + 1]! - 1 - e.draft.length, sampled, ctx, events);
      continue;
    }
    seq.numComputedTokens += e.numTokens;
    if (!e.wantsToken) continue;
    const row = sampled.rowIndptr[i + 1]! - 1;
    appendToken(seq, row, sampled.ids[row]!, ctx, events);
  }
  return events;
}

/** Appends a sampled token and applies the stop rules; returns true when it ended the sequence. */
function appendToken(seq: Sequence, row: number, tokenId: number, ctx: StepperContext, events: TokenEvent[]): boolean {
  seq.appendOutput(tokenId);
  const stop = checkStop(seq, tokenId, ctx.stop, ctx.stopStringHook);
  if (stop !== null) {
    seq.stopReason = stop.stopReason;
    finishSequence(seq, stop.finishReason, ctx);
  }
  events.push({ seq, row, tokenId, finishReason: seq.finishReason });
  return stop !== null;
}

/**
 * Verifies a decode's draft of k tokens against its k + 1 sampled rows (rows first..first+k,
 * row j drawn at the position draft token j takes). Each row's draw is exactly the token
 * decoding without speculation would draw there, given the tokens before it, so the output is
 * the same token for token (greedy and seeded sampling alike): row j's token is appended; while
 * it equals draft token j, that draft token was right, its KV (computed in this pass) stays, and
 * row j + 1 was drawn from the right context too. The first mismatch is the corrected token; with
 * all k accepted, row k gives a bonus token. Stop rules apply to each appended token in order:
 * a stop inside the accepted tokens ends the sequence there. For a proposal that is one token
 * (not a distribution), accept-while-equal is standard speculative (rejection) sampling: draft
 * token x survives with probability p(x), and on rejection the draw is p conditioned on not x.
 *
 * Rejected positions' KV stays in the table until overwritten; the table is cut back to the
 * accepted tokens (blocks that held only rejected ones go back), and blocks the accepted tokens
 * filled are registered in the prefix cache.
 */
function applyDraft(seq: Sequence, draft: Int32Array, first: number, sampled: SampledRows, ctx: StepperContext, events: TokenEvent[]): void {
  seq.numComputedTokens++; // its own token, before the draft
  let accepted = 0;
  let finished = false;
  for (let j = 0; j <= draft.length; j++) {
    const tokenId = sampled.ids[first + j]!;
    const match = j < draft.length && tokenId === draft[j];
    if (match) accepted++;
    finished = appendToken(seq, first + j, tokenId, ctx, events);
    if (finished || !match) break;
    seq.numComputedTokens++; // draft token j is the sequence's token now, and its KV is right
  }
  if (!finished) {
    ctx.blocks.truncate(seq.id, seq.numComputedTokens);
    ctx.blocks.registerComputed(seq, seq.numComputedTokens);
  }
  ctx.onDraftVerified?.(seq, draft.length, accepted);
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
