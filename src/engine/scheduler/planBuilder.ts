/**
 * PlanBuilder: the accounting every policy shares. It tracks what is left of the token budget,
 * the sequence cap and the free blocks while a policy picks work, and owns the rules that
 * touch the KV pool and the running set:
 *
 *  - fair share (before any policy picks): a waiting sequence that the cap or the pool holds
 *    back takes the place of running sequences of a later sample index, which are preempted
 *    (a bounded number of times each: Sequence.scheduledSampleIndex);
 *  - growing a running sequence: take free blocks; when there are none, preempt the running
 *    sequence last in scheduling order (free its blocks, recompute it later) until there are,
 *    down to the sequence itself;
 *  - admitting a waiting sequence: it takes the longest cached run of its full blocks (prefix
 *    caching: its computed tokens start there) and fresh blocks for the rest of its prompt
 *    (+ outputs, after a preemption); that must fit while leaving one free block per running
 *    sequence, so the decodes of the next steps do not immediately preempt what was admitted.
 *
 * Blocks may be shared, so every count of free blocks goes through a KvLedger.
 *
 * Speculative decoding (addDrafts): after a policy planned its decodes, each may verify a
 * prefix of its proposal as extra tokens of the pass (see that method for the limits).
 *
 * Nothing here mutates a Sequence or the pool: the result is a Plan for commitPlan().
 */
import type { Sequence } from "../sequence";
import { KvLedger } from "./kvLedger";
import type { Plan, PlanEntry, PolicyName, Rejection, SchedulerConfig, SchedulerInput } from "./types";

/** A running sequence's one-token decode row (no draft yet). */
function isRunningDecode(e: PlanEntry): boolean {
  return e.seq.status === "running" && e.numTokens === 1 && e.contextLen + 1 === e.seq.numTokens;
}

/** What tryAdmit() did: admitted, blocked (stop admitting, FCFS) or rejected (skip it). */
export type AdmitResult = "admitted" | "blocked" | "rejected";

/** Budget, cap and KV accounting for one plan; policies pick work through it. */
export class PlanBuilder {
  readonly entries: PlanEntry[] = [];
  readonly preempted: Sequence[] = [];
  readonly admitted: Sequence[] = [];
  readonly rejected: Rejection[] = [];
  /** Tokens left in this pass (negative only after an over-budget prompt ran alone). */
  budget: number;
  /** The plan's KV accounting: free blocks, shared-block references, blocks filled in the pass. */
  private readonly ledger: KvLedger;
  /** Running sequences once what is planned so far is committed. */
  numRunning: number;
  /** Built on the first preemption only: the common pass never needs it. */
  private scheduled: Set<Sequence> | null = null;
  private readonly removed = new Set<Sequence>();
  /** Every running sequence at or after this index is removed or scheduled. */
  private victimCursor: number;
  /** Tokens the whole pool holds. */
  private readonly poolTokens: number;
  /** A running sequence had to be preempted to grow: the pool is short, admissions wait. */
  private kvShort = false;
  /** Waiting sequences the fair-share pass preempted for (null in the common pass). */
  private roomMadeFor: Sequence[] | null = null;

  constructor(
    private readonly input: SchedulerInput,
    readonly config: SchedulerConfig,
    private readonly policy: PolicyName,
  ) {
    this.budget = config.tokenBudget;
    this.ledger = new KvLedger(input.blocks);
    this.numRunning = input.running.length;
    this.victimCursor = input.running.length - 1;
    this.poolTokens = input.blocks.numBlocks * input.blocks.blockSize;
    this.shareFairly();
  }

  /** Free blocks left once what is planned so far is committed. */
  get free(): number {
    return this.ledger.free;
  }

  /** Tokens of waiting `seq` that its cached run would not cover (all of them without a hit). */
  uncachedTokens(seq: Sequence): number {
    return seq.numTokens - this.ledger.probe(seq).blocks * this.input.blocks.blockSize;
  }

  /** No room for another row in this pass. */
  get full(): boolean {
    return this.budget <= 0 || this.entries.length >= this.config.maxSeqs;
  }

  /** Preempted or rejected in this plan. */
  isRemoved(seq: Sequence): boolean {
    return this.removed.size > 0 && this.removed.has(seq);
  }

  /**
   * Plans `n` tokens of running `seq`, preempting newer running sequences while the pool is
   * short. Returns false when `seq` itself was preempted or rejected instead.
   */
  scheduleRunning(seq: Sequence, n: number): boolean {
    const blocks = this.input.blocks;
    const c = seq.numComputedTokens;
    if (c + n > this.poolTokens && this.rejectIfNeverFits(seq, c + n)) return false;
    // A running table covers its computed tokens, so a pass that stays inside the last,
    // partly filled block needs nothing new: the common decode skips the table lookup.
    const bs = blocks.blockSize;
    const inLastBlock = c % bs !== 0 && (c % bs) + n <= bs;
    const need = inLastBlock ? 0 : Math.max(0, blocks.blocksFor(c + n) - blocks.numBlocksHeld(seq.id));
    while (need > this.free) {
      const victim = this.nextVictim();
      this.preempt(victim);
      this.kvShort = true;
      if (victim === seq) return false;
    }
    this.ledger.take(need);
    this.addEntry(seq, c, n, need);
    return true;
  }

  /**
   * Admits waiting `seq` over its cached run with up to `maxTokens` of its other tokens in this
   * pass, if the cap and the pool allow.
   */
  tryAdmit(seq: Sequence, maxTokens: number): AdmitResult {
    if (this.rejectIfNeverFits(seq, seq.numTokens)) return "rejected";
    // A pass that had to preempt to grow is short of KV: admitting now would only thrash.
    if (this.kvShort || this.numRunning >= this.config.maxSeqs) return "blocked";
    const run = this.ledger.probe(seq);
    // Room made by fair share already counted the running sequences' next blocks.
    const reserve = this.roomMadeFor?.includes(seq) ? 0 : this.numRunning;
    if (run.cost + reserve > this.free) return "blocked";
    this.ledger.admit(seq, run.blocks);
    this.numRunning++;
    this.admitted.push(seq);
    const blocks = this.input.blocks;
    const c = run.blocks * blocks.blockSize;
    this.addEntry(seq, c, Math.min(seq.numTokens - c, maxTokens), blocks.blocksFor(seq.numTokens) - run.blocks);
    return "admitted";
  }

  /**
   * Speculative decoding: every running decode planned so far verifies up to its proposal's
   * length of proposed tokens, in plan order, while the budget lasts. Draft tokens only take
   * free blocks beyond one per running sequence (the reserve admission keeps), never preempt,
   * and stay out of a pass that preempted anything or holds specDisableBatchSize decodes: at
   * that size a pass is no longer bound by streaming the weights, so verifying costs throughput.
   * A draft's tokens are not its sequence's yet: they fill no block another row may hit.
   */
  addDrafts(): void {
    const proposals = this.input.proposals;
    if (proposals === undefined || proposals.size === 0 || this.preempted.length > 0 || this.budget <= 0) return;
    const entries = this.entries;
    let decodes = 0;
    for (const e of entries) if (isRunningDecode(e)) decodes++;
    if (decodes >= (this.config.specDisableBatchSize ?? Infinity)) return;
    const blocks = this.input.blocks;
    for (let i = 0; i < entries.length && this.budget > 0; i++) {
      const e = entries[i]!;
      const proposal = proposals.get(e.seq.id);
      if (proposal === undefined || proposal.length === 0 || !isRunningDecode(e)) continue;
      const held = blocks.numBlocksHeld(e.seq.id) + e.newBlocks;
      const extra = (k: number) => Math.max(0, blocks.blocksFor(e.contextLen + 1 + k) - held);
      let k = Math.min(proposal.length, this.budget);
      while (k > 0 && extra(k) > 0 && extra(k) > this.free - this.numRunning) k--;
      if (k === 0) continue;
      const more = extra(k);
      this.ledger.take(more);
      this.budget -= k;
      entries[i] = { ...e, numTokens: 1 + k, newBlocks: e.newBlocks + more, draft: proposal.subarray(0, k) };
    }
  }

  /** Rejects `seq` when `numTokens` of it need more blocks than the whole pool holds. */
  rejectIfNeverFits(seq: Sequence, numTokens: number): boolean {
    const blocks = this.input.blocks;
    const need = blocks.blocksFor(numTokens);
    if (need <= blocks.numBlocks) return false;
    if (seq.status === "running") {
      this.ledger.release(seq.id);
      this.numRunning--;
    }
    this.removed.add(seq);
    this.rejected.push({
      seq,
      finishReason: seq.numOutputTokens > 0 ? "length" : "rejected",
      message: `sequence needs ${need} KV blocks for ${numTokens} tokens; the pool has ${blocks.numBlocks}`,
    });
    return true;
  }

  finish(): Plan {
    let numTokens = 0;
    for (const e of this.entries) numTokens += e.numTokens;
    return {
      policy: this.policy,
      entries: this.entries,
      numTokens,
      preempted: this.preempted,
      admitted: this.admitted,
      rejected: this.rejected,
      numFreeBlocksAfter: this.ledger.free,
    };
  }

  private addEntry(seq: Sequence, contextLen: number, numTokens: number, newBlocks: number): void {
    const wantsToken = contextLen + numTokens === seq.numTokens;
    this.entries.push({ seq, contextLen, numTokens, wantsToken, newBlocks });
    this.scheduled?.add(seq);
    this.budget -= numTokens;
    this.ledger.complete(seq, contextLen, contextLen + numTokens);
  }

  /**
   * Fair share, before a policy picks anything. Waiting sequences are taken in scheduling order
   * (runsBefore): while one is held back by the sequence cap or the pool and the running
   * sequence last in that order has a higher sample index, that one is preempted (recomputed
   * later) to make room. A request's extra samples thus give way to other requests' earlier
   * samples: with n = 128 and a cap of 64, a new request runs in the pass it arrives in, not
   * after 64 samples of 1000 tokens. Only a strictly lower index takes a place, so no two
   * sequences evict each other in turn, and with n = 1 everywhere this never preempts.
   * Indexes are scheduledSampleIndex: a sample preempted MAX_SAMPLE_PREEMPTIONS times ranks as
   * a first one and keeps its place, so a stream of new requests cannot starve it.
   * A sequence that cannot be given room even so stops the pass: admission is in order.
   */
  private shareFairly(): void {
    const { running, waiting, blocks } = this.input;
    const maxSeqs = this.config.maxSeqs;
    const ledger = this.ledger;
    let numRunning = this.numRunning;
    // Blocks promised to the waiting sequences room was made for (the policy admits them later).
    let promised = 0;
    for (const w of waiting) {
      const last = this.victimCursor;
      if (last < 0 || running[last]!.scheduledSampleIndex <= w.scheduledSampleIndex) return;
      if (blocks.blocksFor(w.numTokens) > blocks.numBlocks) continue; // never fits: the policy rejects it
      const mark = ledger.mark();
      const free = ledger.free;
      let k = last;
      let slots = numRunning;
      // What admitting it takes, cache hits counted (a victim's release may turn a hit into a cost).
      let need = ledger.probe(w).cost;
      while ((slots >= maxSeqs || need + slots + promised > ledger.free) && k >= 0 && running[k]!.scheduledSampleIndex > w.scheduledSampleIndex) {
        ledger.release(running[k]!.id); // shared blocks free only with their last holder
        need = ledger.probe(w).cost;
        slots--;
        k--;
      }
      if (slots >= maxSeqs || need + slots + promised > ledger.free) {
        ledger.rollback(mark, free);
        return;
      }
      for (; this.victimCursor > k; this.victimCursor--) this.preempt(running[this.victimCursor]!, false);
      // Once one preemption made room, admission must not undo it by reserving decode blocks again.
      if (k < last || this.roomMadeFor !== null) (this.roomMadeFor ??= []).push(w);
      numRunning = slots + 1;
      promised += need;
    }
  }

  /** The running sequence last in scheduling order not yet scheduled or removed (the caller's own, at worst). */
  private nextVictim(): Sequence {
    const running = this.input.running;
    this.scheduled ??= new Set(this.entries.map((e) => e.seq));
    while (this.victimCursor >= 0) {
      const s = running[this.victimCursor]!;
      if (!this.removed.has(s) && !this.scheduled.has(s)) return s;
      this.victimCursor--;
    }
    throw new Error("scheduler: no running sequence left to preempt");
  }

  /** Preempts `seq`; `release` false when the ledger already dropped its references. */
  private preempt(seq: Sequence, release = true): void {
    if (release) this.ledger.release(seq.id);
    this.numRunning--;
    this.removed.add(seq);
    this.preempted.push(seq);
  }
}
