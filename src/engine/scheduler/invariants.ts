/**
 * assertPlan: the invariants every plan must hold, checked at the end of every schedule()
 * (as vLLM v1 asserts its budgets). A violation is a scheduler bug: it throws, never warns.
 * It runs every step, so it allocates nothing on the success path.
 */
import type { Sequence } from "../sequence";
import { IdSet } from "./idSet";
import type { Plan, SchedulerConfig, SchedulerInput, SchedulerPolicy } from "./types";

/** A plan broke a scheduling invariant. */
export class PlanInvariantError extends Error {
  override name = "PlanInvariantError";
}

const planned = new IdSet();
const removed = new IdSet();

/** Throws PlanInvariantError unless `plan` is a valid pass for `input` under `config`. */
export function assertPlan(plan: Plan, input: SchedulerInput, config: SchedulerConfig, policy: SchedulerPolicy): void {
  const fail = (message: string): never => {
    throw new PlanInvariantError(`${policy.name}: ${message}`);
  };
  const blocks = input.blocks;
  const bs = blocks.blockSize;
  planned.clear();
  removed.clear();
  let tokens = 0;
  let newBlocks = 0;
  let decodes = 0;
  let admittedRows = 0;
  for (const e of plan.entries) {
    const seq = e.seq;
    const c = e.contextLen;
    const n = e.numTokens;
    if (!planned.add(seq.id)) fail(`sequence ${seq.id} planned twice`);
    if (n < 1 || c !== seq.numComputedTokens || c + n > seq.numTokens) {
      fail(`sequence ${seq.id}: ${n} tokens from ${c} (computed ${seq.numComputedTokens} of ${seq.numTokens})`);
    }
    if (e.wantsToken !== (c + n === seq.numTokens)) fail(`sequence ${seq.id}: wantsToken is wrong`);
    // Planning mutates nothing, so a waiting sequence in the pass is one being admitted.
    const isAdmitted = seq.status === "waiting";
    if (isAdmitted) {
      admittedRows++;
      if (!plan.admitted.includes(seq)) fail(`waiting sequence ${seq.id} planned without admission`);
    } else if (seq.status !== "running") fail(`sequence ${seq.id} is ${seq.status}`);
    else if (n === 1 && c + 1 === seq.numTokens) decodes++;
    const held = isAdmitted ? 0 : blocks.numBlocksHeld(seq.id);
    if ((held + e.newBlocks) * bs < c + n) fail(`sequence ${seq.id}: ${held + e.newBlocks} blocks cannot hold ${c + n} tokens`);
    newBlocks += e.newBlocks;
    tokens += n;
  }
  if (admittedRows !== plan.admitted.length) fail("an admitted sequence has no tokens in the pass");

  let freed = 0;
  let removedRunning = 0;
  const drop = (id: number, status: string, held: number) => {
    if (planned.has(id) || !removed.add(id)) fail(`sequence ${id} both planned and removed, or removed twice`);
    if (status === "running") {
      freed += held;
      removedRunning++;
    }
  };
  for (const seq of plan.preempted) {
    if (seq.status !== "running") fail(`preempted ${seq.id} was not running`);
    drop(seq.id, seq.status, blocks.numBlocksHeld(seq.id));
  }
  for (const r of plan.rejected) drop(r.seq.id, r.seq.status, blocks.numBlocksHeld(r.seq.id));
  if (plan.admitted.length > 0) checkAdmissionOrder(plan, input, fail);

  if (tokens !== plan.numTokens) fail(`numTokens ${plan.numTokens} != sum ${tokens}`);
  const oversizeAlone = !policy.splitsPrompts && plan.entries.length === 1 && plan.entries[0]!.contextLen === 0;
  if (tokens > config.tokenBudget && !oversizeAlone) fail(`${tokens} tokens > budget ${config.tokenBudget}`);
  if (plan.entries.length > config.maxSeqs) fail(`${plan.entries.length} sequences > cap ${config.maxSeqs}`);
  const runningAfter = input.running.length - removedRunning + plan.admitted.length;
  if (runningAfter > Math.max(config.maxSeqs, input.running.length)) fail(`${runningAfter} running > cap ${config.maxSeqs}`);
  const freeAfter = blocks.numFreeBlocks + freed - newBlocks;
  if (freeAfter < 0 || freeAfter !== plan.numFreeBlocksAfter) {
    fail(`free blocks after the plan: ${plan.numFreeBlocksAfter}, accounted ${freeAfter}`);
  }
  if (runningAfter >= config.maxSeqs && input.waiting.length > plan.admitted.length) checkFairShare(plan, input, runningAfter, freeAfter, fail);

  // SplitFuse: a running decode misses a pass only when preempted, rejected, or when decodes
  // alone used up the whole budget or cap.
  // Planned decodes are distinct running decodes, so counting them is enough.
  if (policy.neverSkipsDecodes && decodes < Math.min(config.tokenBudget, config.maxSeqs)) {
    let runningDecodes = 0;
    for (const seq of input.running) if (seq.numUncomputedTokens === 1) runningDecodes++;
    let removedDecodes = 0;
    for (const seq of plan.preempted) if (seq.numUncomputedTokens === 1) removedDecodes++;
    for (const r of plan.rejected) if (r.seq.status === "running" && r.seq.numUncomputedTokens === 1) removedDecodes++;
    if (decodes + removedDecodes !== runningDecodes) {
      const skipped = input.running.find((s) => s.numUncomputedTokens === 1 && !planned.has(s.id) && !removed.has(s.id));
      fail(`running decode ${skipped?.id} skipped`);
    }
  }
}

/** Admitted sequences are a prefix of `waiting` (scheduling order), skipping only rejected ones. */
function checkAdmissionOrder(plan: Plan, input: SchedulerInput, fail: (m: string) => never): void {
  let k = 0;
  for (const seq of input.waiting) {
    if (k === plan.admitted.length) return;
    if (removed.has(seq.id)) continue;
    if (seq !== plan.admitted[k]) fail(`admitted out of order at sequence ${seq.id}`);
    k++;
  }
  if (k !== plan.admitted.length) fail("admitted a sequence that was not waiting");
}

/**
 * Fair share: when the sequence cap is full after the pass and the pool would hold the first
 * waiting sequence, no running sequence has a higher sample index than it (it would have given
 * its place: one request's n must not hold every slot while another request waits).
 */
function checkFairShare(plan: Plan, input: SchedulerInput, runningAfter: number, freeAfter: number, fail: (m: string) => never): void {
  const blocks = input.blocks;
  let head: Sequence | undefined;
  for (const seq of input.waiting) {
    if (removed.has(seq.id) || plan.admitted.includes(seq) || blocks.blocksFor(seq.numTokens) > blocks.numBlocks) continue;
    head = seq;
    break;
  }
  if (head === undefined || blocks.blocksFor(head.numTokens) + runningAfter > freeAfter) return;
  const index = head.sampleIndex;
  for (const seq of input.running) {
    if (seq.sampleIndex > index && !removed.has(seq.id)) fail(`running ${seq.id} (sample ${seq.sampleIndex}) holds the place of waiting ${head.id}`);
  }
  for (const seq of plan.admitted) if (seq.sampleIndex > index) fail(`admitted ${seq.id} (sample ${seq.sampleIndex}) ahead of waiting ${head.id}`);
}
