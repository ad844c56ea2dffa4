/**
 * assertPlan: the invariants every plan must hold, checked at the end of every schedule()
 * (as vLLM v1 asserts its budgets). A violation is a scheduler bug: it throws, never warns.
 * It runs every step, so it allocates little on the success path (one KvLedger, which replays
 * the plan's block accounting: shared blocks make a plain count wrong).
 */
import type { Sequence } from "../sequence";
import { IdSet } from "./idSet";
import { KvLedger } from "./kvLedger";
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
  // Removals first, as commitPlan applies them: rows may take blocks they free.
  const ledger = new KvLedger(blocks);
  let removedRunning = 0;
  const drop = (seq: Sequence) => {
    if (!removed.add(seq.id)) fail(`sequence ${seq.id} removed twice`);
    if (seq.status === "running") {
      ledger.release(seq.id);
      removedRunning++;
    }
  };
  for (const seq of plan.preempted) {
    if (seq.status !== "running") fail(`preempted ${seq.id} was not running`);
    drop(seq);
  }
  for (const r of plan.rejected) drop(r.seq);
  let tokens = 0;
  let decodes = 0;
  let admittedRows = 0;
  /** Blocks admissions saved through cache hits (fair share is judged without them). */
  let hitSavings = 0;
  let draftTokens = 0;
  for (const e of plan.entries) {
    const seq = e.seq;
    const c = e.contextLen;
    const k = e.draft?.length ?? 0;
    const n = e.numTokens - k; // the sequence's own tokens
    if (!planned.add(seq.id) || removed.has(seq.id)) fail(`sequence ${seq.id} planned twice, or planned and removed`);
    // Planning mutates nothing, so a waiting sequence in the pass is one being admitted.
    const isAdmitted = seq.status === "waiting";
    const start = isAdmitted ? 0 : seq.numComputedTokens;
    if (n < 1 || c < start || (!isAdmitted && c !== start) || c + n > seq.numTokens) {
      fail(`sequence ${seq.id}: ${n} tokens from ${c} (computed ${seq.numComputedTokens} of ${seq.numTokens})`);
    }
    if (e.wantsToken !== (c + n === seq.numTokens)) fail(`sequence ${seq.id}: wantsToken is wrong`);
    if (e.draft !== undefined) checkDraft(e.draft, seq, n, isAdmitted, input, fail);
    draftTokens += k;
    let held = -1;
    if (isAdmitted) {
      admittedRows++;
      if (!plan.admitted.includes(seq)) fail(`waiting sequence ${seq.id} planned without admission`);
      // An admitted row starts past a cached run of whole blocks, never at its last token.
      const cost = c % bs === 0 ? ledger.admit(seq, c / bs) : -1;
      if (cost < 0) fail(`sequence ${seq.id}: no cached run of ${c} tokens to start from`);
      hitSavings += blocks.blocksFor(seq.numTokens) - cost;
      held = c / bs;
      if (e.newBlocks !== blocks.blocksFor(seq.numTokens) - held) fail(`sequence ${seq.id}: admitted with ${e.newBlocks} new blocks`);
    } else if (seq.status !== "running") fail(`sequence ${seq.id} is ${seq.status}`);
    else {
      if (n === 1 && c + 1 === seq.numTokens) decodes++;
      ledger.take(e.newBlocks);
    }
    if (held < 0) held = blocks.numBlocksHeld(seq.id);
    if ((held + e.newBlocks) * bs < c + n + k) fail(`sequence ${seq.id}: ${held + e.newBlocks} blocks cannot hold ${c + n + k} tokens`);
    ledger.complete(seq, c, c + n); // draft tokens fill nothing another row may take
    tokens += n + k;
  }
  if (draftTokens > 0) {
    // Speculation never costs another sequence its KV, and stays out of large batches.
    if (plan.preempted.length > 0) fail(`${draftTokens} draft tokens in a pass that preempts`);
    if (decodes >= (config.specDisableBatchSize ?? Infinity)) fail(`draft tokens in a pass of ${decodes} decodes`);
  }
  if (admittedRows !== plan.admitted.length) fail("an admitted sequence has no tokens in the pass");
  if (plan.admitted.length > 0) checkAdmissionOrder(plan, input, fail);

  if (tokens !== plan.numTokens) fail(`numTokens ${plan.numTokens} != sum ${tokens}`);
  const oversizeAlone = !policy.splitsPrompts && plan.entries.length === 1 && plan.admitted.length === 1;
  if (tokens > config.tokenBudget && !oversizeAlone) fail(`${tokens} tokens > budget ${config.tokenBudget}`);
  if (plan.entries.length > config.maxSeqs) fail(`${plan.entries.length} sequences > cap ${config.maxSeqs}`);
  const runningAfter = input.running.length - removedRunning + plan.admitted.length;
  if (runningAfter > Math.max(config.maxSeqs, input.running.length)) fail(`${runningAfter} running > cap ${config.maxSeqs}`);
  const freeAfter = ledger.free;
  if (freeAfter < 0 || freeAfter !== plan.numFreeBlocksAfter) {
    fail(`free blocks after the plan: ${plan.numFreeBlocksAfter}, accounted ${freeAfter}`);
  }
  if (runningAfter >= config.maxSeqs && input.waiting.length > plan.admitted.length) checkFairShare(plan, input, runningAfter, freeAfter - hitSavings, fail);

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

/** A draft rides on a running decode and is a prefix of that sequence's proposal. */
function checkDraft(draft: Int32Array, seq: Sequence, own: number, isAdmitted: boolean, input: SchedulerInput, fail: (m: string) => never): void {
  if (isAdmitted || own !== 1 || seq.numUncomputedTokens !== 1 || draft.length < 1) fail(`sequence ${seq.id}: a draft on a row that is not a running decode`);
  const proposal = input.proposals?.get(seq.id);
  if (proposal === undefined || proposal.length < draft.length) fail(`sequence ${seq.id}: a draft of ${draft.length} tokens it never proposed`);
  for (let j = 0; j < draft.length; j++) if (draft[j] !== proposal![j]) fail(`sequence ${seq.id}: draft token ${j} is not its proposal's`);
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
 * waiting sequence, no running sequence has a higher scheduled sample index than it (it would
 * have given its place: one request's n must not hold every slot while another request waits).
 * A sample preempted MAX_SAMPLE_PREEMPTIONS times has scheduled index 0 and keeps its place.
 * `freeAfter` leaves out what admissions saved through cache hits: the planner makes room
 * before it knows which blocks the pass will share, so fairness is judged as if none were.
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
  const index = head.scheduledSampleIndex;
  for (const seq of input.running) {
    const i = seq.scheduledSampleIndex;
    if (i > index && !removed.has(seq.id)) fail(`running ${seq.id} (sample ${i}) holds the place of waiting ${head.id}`);
  }
  for (const seq of plan.admitted) if (seq.scheduledSampleIndex > index) fail(`admitted ${seq.id} (sample ${seq.scheduledSampleIndex}) ahead of waiting ${head.id}`);
}
