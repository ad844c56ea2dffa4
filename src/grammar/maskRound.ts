/**
 * MaskRound: one round of mask work shared by the grammar Workers (engineGrammars.ts asks, each
 * Worker's grammarService.ts claims and fills). A constrained sample's matcher is kept in every
 * Worker that has its grammar compiled (replicas, grammarPool.ts), so any of them can compute its
 * mask; the rows of a round are not split ahead by Worker but claimed one at a time, first by the
 * Worker whose replica is nearest the row's state, and by any other holder once that one has no
 * nearer rows left. XGrammar's fill is ~99% of a Worker's time and a mask costs from 5 us to 10 ms
 * by state (bench/results/grammar-profile-cpu.md): split ahead, the busiest of K Workers waited
 * 1.3-1.6x the mean; claimed, about the mean plus one mask.
 *
 * Rows go to every Worker holding a replica (one message each); what they write comes back through
 * shared memory, so nothing is copied or merged on the engine thread:
 *
 *   rows:    Int32Array, per row: nReplicas, then per replica (the nearest first):
 *            worker, matcher, rollback, nAccept, id_0 .. id_nAccept-1
 *   control: Int32Array on a SharedArrayBuffer [2 + 2 * numRows]
 *            [0] rows finished (Atomics.notify'd at the last), [1] the latest finish (us after
 *            postedAt: the engine's wake latency),
 *            [2 + r] claim of row r: 0 = free, w + 1 = Worker w has it, -1 = closed by the engine
 *                    (compareExchange),
 *            [2 + numRows + r] state of row r: 0 = pending, 1 = mask written, 2 = an id refused
 *   masks:   Uint32Array on a SharedArrayBuffer [numRows * words], row r's mask at r * words
 *
 * A replica that computed row r applied its sync; the others did not (the engine learns which
 * from the claim). A Worker that dies mid-round leaves its claimed rows pending for good: the
 * engine asks for them again in a new round (never reusing a slot the dead thread may still write).
 */
import { epochMs, type MatcherSync, type RoundShared } from "./worker/protocol";

export const ROW_PENDING = 0;
export const ROW_DONE = 1;
export const ROW_REFUSED = 2;

/** One replica's part of a row: its Worker and what brings its matcher to the row's state. */
export interface RowReplica extends MatcherSync {
  worker: number;
}


export function createRoundShared(numRows: number, words: number): RoundShared {
  return { numRows, words, postedAt: epochMs(), control: new SharedArrayBuffer(4 * (2 + 2 * numRows)), masks: new SharedArrayBuffer(4 * numRows * words) };
}

/** Rows packed for the Workers' message (layout at the top). */
export function packRows(rows: readonly (readonly RowReplica[])[]): Int32Array {
  let len = 0;
  for (const row of rows) {
    len++;
    for (const r of row) len += 4 + r.accept.length;
  }
  const out = new Int32Array(len);
  let at = 0;
  for (const row of rows) {
    out[at++] = row.length;
    for (const r of row) {
      out[at++] = r.worker;
      out[at++] = r.matcher;
      out[at++] = r.rollback;
      out[at++] = r.accept.length;
      out.set(r.accept, at);
      at += r.accept.length;
    }
  }
  return out;
}

/** Worker `worker`'s part of each row: its sync (null: it holds no replica) and whether it is the nearest. */
export function unpackRowsFor(packed: Int32Array, worker: number): { sync: MatcherSync | null; nearest: boolean }[] {
  const out: { sync: MatcherSync | null; nearest: boolean }[] = [];
  for (let at = 0; at < packed.length; ) {
    const n = packed[at++]!;
    let mine: { sync: MatcherSync | null; nearest: boolean } = { sync: null, nearest: false };
    for (let k = 0; k < n; k++) {
      const w = packed[at++]!, matcher = packed[at++]!, rollback = packed[at++]!, len = packed[at++]!;
      if (w === worker) mine = { sync: { matcher, rollback, accept: Array.from(packed.subarray(at, at + len)) }, nearest: k === 0 };
      at += len;
    }
    out.push(mine);
  }
  return out;
}

/** The engine's view of a round's shared state. */
export class RoundState {
  private readonly control: Int32Array;
  readonly masks: Uint32Array;

  constructor(readonly shared: RoundShared) {
    this.control = new Int32Array(shared.control);
    this.masks = new Uint32Array(shared.masks);
  }

  get finished(): number {
    return Atomics.load(this.control, 0);
  }

  /** When the round's last row finished (epoch ms); NaN before. */
  get lastRowAt(): number {
    return this.finished === this.shared.numRows ? this.shared.postedAt + Atomics.load(this.control, 1) / 1000 : NaN;
  }

  /** Row r's state (ROW_*). */
  state(r: number): number {
    return Atomics.load(this.control, 2 + this.shared.numRows + r);
  }

  /** The Worker that claimed row r, or -1. */
  claimedBy(r: number): number {
    return Atomics.load(this.control, 2 + r) - 1;
  }

  /** Closes row r to the Workers if none has claimed it; false when one has. */
  close(r: number): boolean {
    return Atomics.compareExchange(this.control, 2 + r, 0, -1) === 0;
  }

  /** Row r's mask (a view of the shared masks). */
  mask(r: number): Uint32Array {
    const w = this.shared.words;
    return this.masks.subarray(r * w, (r + 1) * w);
  }

  /** Resolves once a row finishes past `seen` finished rows, or after `ms`. */
  changed(seen: number, ms: number): Promise<unknown> {
    const r = Atomics.waitAsync(this.control, 0, seen, ms);
    return r.async ? r.value : Promise.resolve();
  }
}

/** A Worker's side of a round: claims rows and publishes them. */
export class RoundClaims {
  private readonly control: Int32Array;
  readonly masks: Uint32Array;

  constructor(private readonly shared: RoundShared) {
    this.control = new Int32Array(shared.control);
    this.masks = new Uint32Array(shared.masks);
  }

  /** Takes row r for Worker `worker`; false when another has it. */
  claim(r: number, worker: number): boolean {
    return Atomics.compareExchange(this.control, 2 + r, 0, worker + 1) === 0;
  }

  /**
   * Row r is finished (ROW_DONE with its mask written, or ROW_REFUSED). The round's last row wakes
   * the engine; the others do not (64 wakes a pass would cost the engine thread more than they
   * save), and a Worker's answer, at the end of its share, wakes it as well.
   */
  finish(r: number, state: number): void {
    const c = this.control, us = Math.round((epochMs() - this.shared.postedAt) * 1000);
    // [1] = the latest finish (a compare-and-swap max: two Workers may finish the last rows at once)
    for (let cur = Atomics.load(c, 1); us > cur; ) {
      const seen = Atomics.compareExchange(c, 1, cur, us);
      if (seen === cur) break;
      cur = seen;
    }
    Atomics.store(c, 2 + this.shared.numRows + r, state);
    if (Atomics.add(c, 0, 1) === this.shared.numRows - 1) Atomics.notify(c, 0);
  }
}
