/**
 * Dynamic SplitFuse (DeepSpeed-FastGen): every pass is filled to the token budget B.
 *
 *   1. running decodes, one token each, in order: generation never stalls behind a prompt;
 *   2. partially prefilled prompts continue and new prompts are admitted, both in scheduling
 *      order (runsBefore): with n = 1 everywhere that is every partial prompt, oldest first,
 *      then the queue, FCFS; a request's later samples recomputing after a preemption do not
 *      take the budget ahead of another request's first sample.
 *
 * Long prompts are split into chunks across passes and short ones fused into one pass, so the
 * budget is filled exactly whenever enough prompt tokens wait (and KV admits them). A sequence
 * samples only in the pass that holds its last prompt chunk. Speculative draft tokens of the
 * decodes come right after them (PlanBuilder.addDrafts), before any prompt chunk.
 */
import type { Sequence } from "../sequence";
import { runsBefore } from "../sequence";
import { PlanBuilder } from "./planBuilder";
import type { Plan, SchedulerConfig, SchedulerInput, SchedulerPolicy } from "./types";

/** Dynamic SplitFuse, the default. */
export const splitFusePolicy: SchedulerPolicy = {
  name: "splitfuse",
  neverSkipsDecodes: true,
  splitsPrompts: true,
  plan(input: SchedulerInput, config: SchedulerConfig): Plan {
    const b = new PlanBuilder(input, config, "splitfuse");
    const partial: Sequence[] = [];
    for (const seq of input.running) {
      if (b.full) break;
      if (seq.numUncomputedTokens > 1) partial.push(seq);
      else if (!b.isRemoved(seq)) b.scheduleRunning(seq, 1);
    }
    b.addDrafts();
    const waiting = input.waiting;
    let w = 0; // the next waiting sequence; past the end once admission is blocked
    const admitUpTo = (next: Sequence | undefined) => {
      for (; w < waiting.length && (next === undefined || runsBefore(waiting[w]!, next)); w++) {
        if (b.full) return;
        if (b.tryAdmit(waiting[w]!, b.budget) === "blocked") w = waiting.length;
      }
    };
    for (const seq of partial) {
      admitUpTo(seq);
      if (b.full) break;
      if (!b.isRemoved(seq)) b.scheduleRunning(seq, Math.min(seq.numUncomputedTokens, b.budget));
    }
    admitUpTo(undefined);
    return b.finish();
  },
};
