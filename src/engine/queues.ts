/**
 * SequenceQueues: the live sequences of an engine, in two lists kept in scheduling order
 * (runsBefore: sample index, then arrival; plain arrival order when every request has n = 1).
 *
 *   waiting: not in the KV cache (new, or preempted: those go back where their order puts them;
 *            a later sample overtaken by MAX_SAMPLE_OVERTAKES new ones moves up as a first one)
 *   running: holding KV blocks (partially prefilled prompts and decodes alike)
 *
 * Admission takes a prefix of `waiting`, so the preemption victim (the running sequence that
 * comes last in that order: a later sample, or else the newest) is simply the last of `running`.
 */
import type { Sequence } from "./sequence";
import { runsBefore } from "./sequence";

/** The running and waiting lists plus an id index of the live sequences. */
export class SequenceQueues {
  readonly running: Sequence[] = [];
  readonly waiting: Sequence[] = [];
  private readonly live = new Map<number, Sequence>();

  /** Queues a new sequence at the back of `waiting`. */
  add(seq: Sequence): void {
    if (this.live.has(seq.id)) throw new Error(`sequence ${seq.id} is already queued`);
    if (seq.status !== "waiting") throw new Error(`sequence ${seq.id} is ${seq.status}, not waiting`);
    this.live.set(seq.id, seq);
    const at = insertInOrder(this.waiting, seq);
    if (at < this.waiting.length - 1) this.countOvertaken(at + 1);
  }

  /**
   * The waiting sequences from `start` on were just overtaken by a new one; those that reach
   * MAX_SAMPLE_OVERTAKES now rank as first samples (Sequence.scheduledSampleIndex) and move up.
   */
  private countOvertaken(start: number): void {
    const waiting = this.waiting;
    let aged: Sequence[] | null = null;
    for (let i = start; i < waiting.length; i++) {
      const s = waiting[i]!;
      if (s.scheduledSampleIndex === 0) continue;
      s.numOvertaken++;
      if (s.scheduledSampleIndex === 0) (aged ??= []).push(s);
    }
    if (aged === null) return;
    for (const s of aged) removeFrom(waiting, s);
    for (const s of aged) insertInOrder(waiting, s);
  }

  /** The live (unfinished) sequence with this id. */
  get(seqId: number): Sequence | undefined {
    return this.live.get(seqId);
  }

  /** Live sequences, waiting or running. */
  get size(): number {
    return this.live.size;
  }

  /** Takes a sequence off whichever list holds it. */
  remove(seq: Sequence): void {
    if (!this.live.delete(seq.id)) return;
    const i = this.running.lastIndexOf(seq);
    if (i >= 0) this.running.splice(i, 1);
    else removeFrom(this.waiting, seq);
  }

  /** Moves admitted sequences (a prefix of `waiting`, rejected ones aside) to `running`. */
  admit(seqs: readonly Sequence[]): void {
    let prefix = seqs.length <= this.waiting.length;
    for (let i = 0; prefix && i < seqs.length; i++) prefix = this.waiting[i] === seqs[i];
    if (prefix) this.waiting.splice(0, seqs.length);
    else for (const seq of seqs) removeFrom(this.waiting, seq);
    for (const seq of seqs) insertInOrder(this.running, seq);
  }

  /** Moves preempted sequences from `running` back to `waiting`, in order. */
  requeue(seqs: readonly Sequence[]): void {
    for (const seq of seqs) {
      removeFrom(this.running, seq);
      insertInOrder(this.waiting, seq);
    }
  }
}

/** Inserts keeping scheduling order (binary search; appending is the common case); returns its index. */
function insertInOrder(list: Sequence[], seq: Sequence): number {
  const n = list.length;
  if (n === 0 || !runsBefore(seq, list[n - 1]!)) {
    list.push(seq);
    return n;
  }
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (!runsBefore(seq, list[mid]!)) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, seq);
  return lo;
}

function removeFrom(list: Sequence[], seq: Sequence): void {
  const i = list.lastIndexOf(seq);
  if (i < 0) throw new Error(`sequence ${seq.id} (${seq.status}) is not in the expected queue`);
  list.splice(i, 1);
}
