/**
 * SequenceQueues: the live sequences of an engine, in two lists kept in arrival order.
 *
 *   waiting: not in the KV cache (new, or preempted: those go back to the front)
 *   running: holding KV blocks (partially prefilled prompts and decodes alike)
 *
 * FCFS admission keeps every running sequence older than every waiting one, so "the newest
 * running sequence" (the preemption victim) is simply the last of `running`.
 */
import type { Sequence } from "./sequence";

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
    insertByArrival(this.waiting, seq);
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

  /** Moves admitted sequences (a FCFS prefix of `waiting`) to `running`. */
  admit(seqs: readonly Sequence[]): void {
    let prefix = seqs.length <= this.waiting.length;
    for (let i = 0; prefix && i < seqs.length; i++) prefix = this.waiting[i] === seqs[i];
    if (prefix) this.waiting.splice(0, seqs.length);
    else for (const seq of seqs) removeFrom(this.waiting, seq);
    for (const seq of seqs) insertByArrival(this.running, seq);
  }

  /** Moves preempted sequences from `running` back to the front of `waiting`. */
  requeue(seqs: readonly Sequence[]): void {
    for (const seq of seqs) {
      removeFrom(this.running, seq);
      insertByArrival(this.waiting, seq);
    }
  }
}

/** Inserts keeping arrival order (binary search; appending is the common case). */
function insertByArrival(list: Sequence[], seq: Sequence): void {
  const n = list.length;
  if (n === 0 || list[n - 1]!.arrival <= seq.arrival) {
    list.push(seq);
    return;
  }
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.arrival <= seq.arrival) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, seq);
}

function removeFrom(list: Sequence[], seq: Sequence): void {
  const i = list.lastIndexOf(seq);
  if (i < 0) throw new Error(`sequence ${seq.id} (${seq.status}) is not in the expected queue`);
  list.splice(i, 1);
}
