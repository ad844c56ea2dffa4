/**
 * commitPlan: the one place a plan touches state. Rejections and preemptions drop their
 * references first; then every admitted sequence pins the cached blocks of its run that are in
 * the cache now, before any block is handed out (handing one out may evict a free cached block,
 * and a planned hit must not be it); then, in plan order, admitted sequences take the rest of
 * their run (blocks an earlier row of this pass fills) and fresh blocks for their other tokens,
 * running ones grow to cover the pass (draft tokens included), and every row registers the
 * blocks its own tokens fill. The pool
 * must end exactly where the plan's accounting said it would.
 */
import type { KvCacheManager } from "../kvCache/kvCacheManager";
import type { SequenceQueues } from "../queues";
import type { Plan } from "./types";
import { ownTokens } from "./types";

/** Applies `plan` to the queues and the pool; call once, right after schedule(). */
export function commitPlan(plan: Plan, queues: SequenceQueues, blocks: KvCacheManager): void {
  blocks.beginPass();
  for (const r of plan.rejected) {
    blocks.free(r.seq.id);
    queues.remove(r.seq);
    r.seq.finish(r.finishReason);
  }
  if (plan.preempted.length > 0) {
    // Reset before requeueing: the preemption count can change a sequence's scheduling order.
    for (const seq of plan.preempted) {
      blocks.free(seq.id);
      seq.resetForRecompute();
    }
    queues.requeue(plan.preempted);
  }
  const bs = blocks.blockSize;
  if (plan.admitted.length > 0) {
    queues.admit(plan.admitted);
    for (const e of plan.entries) if (e.seq.status === "waiting") blocks.pinCached(e.seq, e.contextLen / bs);
  }
  for (const e of plan.entries) {
    const seq = e.seq;
    if (seq.status === "waiting") {
      // Whole prompt (+ outputs after a preemption) at once: later chunks never wait for KV.
      blocks.admit(seq, e.contextLen / bs, seq.numTokens);
      seq.status = "running";
      seq.numComputedTokens = e.contextLen;
      if (seq.numCachedTokens < 0) seq.numCachedTokens = e.contextLen;
    } else if (e.newBlocks > 0) {
      // Only rows crossing a block edge touch the table.
      const table = blocks.table(seq.id);
      if (table === undefined) throw new Error(`commitPlan: sequence ${seq.id} has no block table`);
      const more = e.contextLen + e.numTokens - table.numTokens;
      if (more > 0) blocks.append(seq.id, more);
    }
    // Draft tokens are not the sequence's (yet): the stepper registers what verification accepts.
    // A row whose tokens complete no block has none to register (most decodes): its earlier
    // blocks were registered by the passes that filled them, so it skips the table lookup.
    const end = e.contextLen + ownTokens(e);
    if (blocks.cachingEnabled && Math.floor(end / bs) > Math.floor(e.contextLen / bs)) blocks.registerComputed(seq, end);
  }
  if (blocks.numFreeBlocks !== plan.numFreeBlocksAfter) {
    throw new Error(`commitPlan: ${blocks.numFreeBlocks} blocks free, the plan expected ${plan.numFreeBlocksAfter}`);
  }
}
