/**
 * Shared by the baselines that never split a prompt (prefill-first, orca).
 *
 * A prompt longer than the whole budget B could never run under that rule, so it runs alone:
 * a pass of that one prompt, over budget. That is the one case where a plan exceeds B.
 */
import type { Sequence } from "../sequence";
import type { PlanBuilder } from "./planBuilder";

/** Admits waiting[from..] whole (past their cached runs), FCFS, while they fit the budget, the cap and the pool. */
export function admitWholePrompts(b: PlanBuilder, waiting: readonly Sequence[], from = 0): void {
  for (let i = from; i < waiting.length; i++) {
    const seq = waiting[i]!;
    if (b.full) return;
    if (b.rejectIfNeverFits(seq, seq.numTokens)) continue;
    const n = b.uncachedTokens(seq);
    if (n > b.budget) {
      if (n > b.config.tokenBudget && b.entries.length === 0) b.tryAdmit(seq, n);
      return;
    }
    if (b.tryAdmit(seq, n) === "blocked") return;
  }
}

/** Plans every running sequence's uncomputed tokens whole (1 for a decode), oldest first. */
export function scheduleRunningWhole(b: PlanBuilder, running: readonly Sequence[]): void {
  for (const seq of running) {
    if (b.full) return;
    const n = seq.numUncomputedTokens;
    if (n <= b.budget && !b.isRemoved(seq)) b.scheduleRunning(seq, n);
  }
}
