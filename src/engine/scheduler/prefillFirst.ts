/**
 * prefill-first: vLLM before chunked prefill. A pass is either whole prompts (as many as fit
 * B, S and the pool, FCFS) or the running decodes; waiting prompts take priority, so decodes
 * stall whenever a prompt can be admitted. A prompt longer than B runs alone (see
 * wholePrompts.ts).
 */
import { PlanBuilder } from "./planBuilder";
import type { Plan, SchedulerConfig, SchedulerInput, SchedulerPolicy } from "./types";
import { admitWholePrompts, scheduleRunningWhole } from "./wholePrompts";

/** vLLM-before-chunked-prefill: prompt passes first, decode passes otherwise. */
export const prefillFirstPolicy: SchedulerPolicy = {
  name: "prefill-first",
  neverSkipsDecodes: false,
  splitsPrompts: false,
  plan(input: SchedulerInput, config: SchedulerConfig): Plan {
    const b = new PlanBuilder(input, config, "prefill-first");
    admitWholePrompts(b, input.waiting);
    if (b.entries.length === 0) {
      scheduleRunningWhole(b, input.running);
      b.addDrafts();
    }
    return b.finish();
  },
};
