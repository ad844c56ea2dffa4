/**
 * commitPlan: the one place a plan touches state. Rejections and preemptions free blocks
 * first, then admitted sequences get their whole allocation and running ones grow to cover
 * the pass. The pool must end exactly where the plan's accounting said it would.
 */
import type { BlockManager } from "../blockManager";
import type { SequenceQueues } from "../queues";
import type { Plan } from "./types";

/** Applies `plan` to the queues and the pool; call once, right after schedule(). */
export function commitPlan(plan: Plan, queues: SequenceQueues, blocks: BlockManager): void {
  for (const r of plan.rejected) {
    blocks.free(r.seq.id);
    queues.remove(r.seq);
    r.seq.rejectMessage = r.message;
    r.seq.finish(r.finishReason);
  }
  if (plan.preempted.length > 0) {
    for (const seq of plan.preempted) blocks.free(seq.id);
    queues.requeue(plan.preempted);
    for (const seq of plan.preempted) seq.resetForRecompute();
  }
  if (plan.admitted.length > 0) {
    queues.admit(plan.admitted);
    for (const seq of plan.admitted) {
      // Whole prompt (+ outputs after a preemption) at once: later chunks never wait for KV.
      blocks.allocate(seq.id, seq.numTokens);
      seq.status = "running";
    }
  }
  for (const e of plan.entries) {
    // Only rows crossing a block edge touch the table (admitted rows were sized above).
    if (e.newBlocks === 0) continue;
    const table = blocks.table(e.seq.id);
    if (table === undefined) throw new Error(`commitPlan: sequence ${e.seq.id} has no block table`);
    const more = e.contextLen + e.numTokens - table.numTokens;
    if (more > 0) blocks.append(e.seq.id, more);
  }
  if (blocks.numFreeBlocks !== plan.numFreeBlocksAfter) {
    throw new Error(`commitPlan: ${blocks.numFreeBlocks} blocks free, the plan expected ${plan.numFreeBlocksAfter}`);
  }
}
