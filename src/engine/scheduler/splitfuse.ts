/**
 * Dynamic SplitFuse (DeepSpeed-FastGen): every pass is filled to the token budget B.
 *
 *   1. running decodes, one token each, oldest first: generation never stalls behind a prompt;
 *   2. partially prefilled prompts continue, oldest first;
 *   3. new prompts are admitted FCFS into what is left.
 *
 * Long prompts are split into chunks across passes and short ones fused into one pass, so the
 * budget is filled exactly whenever enough prompt tokens wait (and KV admits them). A sequence
 * samples only in the pass that holds its last prompt chunk.
 */
import type { Sequence } from "../sequence";
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
    for (const seq of partial) {
      if (b.full) break;
      if (!b.isRemoved(seq)) b.scheduleRunning(seq, Math.min(seq.numUncomputedTokens, b.budget));
    }
    for (const seq of input.waiting) {
      if (b.full) break;
      if (b.tryAdmit(seq, Math.min(seq.numTokens, b.budget)) === "blocked") break;
    }
    return b.finish();
  },
};
