/**
 * orca: iteration-level scheduling. Whole prompts join the running decodes in the same pass
 * while the budget, the sequence cap and the pool allow; prompts are never split. A prompt
 * longer than B runs alone once it heads the queue (see wholePrompts.ts), stalling the
 * decodes for that one pass.
 */
import { PlanBuilder } from "./planBuilder";
import type { Plan, SchedulerConfig, SchedulerInput, SchedulerPolicy } from "./types";
import { admitWholePrompts, scheduleRunningWhole } from "./wholePrompts";

/** Orca-style whole-prompt joins. */
export const orcaPolicy: SchedulerPolicy = {
  name: "orca",
  neverSkipsDecodes: false,
  splitsPrompts: false,
  plan(input: SchedulerInput, config: SchedulerConfig): Plan {
    const b = new PlanBuilder(input, config, "orca");
    let head = 0;
    while (head < input.waiting.length && b.rejectIfNeverFits(input.waiting[head]!, input.waiting[head]!.numTokens)) head++;
    const first = input.waiting[head];
    if (first !== undefined && b.uncachedTokens(first) > config.tokenBudget && b.tryAdmit(first, first.numTokens) === "admitted") {
      return b.finish();
    }
    scheduleRunningWhole(b, input.running);
    b.addDrafts();
    admitWholePrompts(b, input.waiting, head);
    return b.finish();
  },
};
