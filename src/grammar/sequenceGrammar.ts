/**
 * SequenceGrammar: one constrained sample's grammar on the engine thread. Its XGrammar matcher
 * lives in a Worker of the engine's grammar pool (grammarPool.ts, worker/grammarService.ts), its
 * home, with replicas in the other Workers that had its grammar compiled, so that any of them can
 * compute its mask (maskRound.ts); here are the ids it accepted, the allowed-token mask of its next
 * token, and whether it is complete, broken or failed.
 *
 * A sampled id is judged against the mask it was sampled under: XGrammar's masks are exact (a
 * token is in the mask iff the matcher accepts it; checked over whole vocabularies), so the
 * verdict needs no round trip. Each replica catches up lazily: it is sent the ids it missed
 * (syncFor) only when it computes a mask, not when a cached or shared mask serves, and if it ever
 * refuses one the sample fails (`failure`). A replica that took a round's row holds that row's
 * state from then on (applied); the others are as they were.
 *
 *   mask: [ceil(vocab / 32)] uint32, bit id % 32 of word id / 32 set = id allowed (fg_batch masks)
 */
import type { GrammarRef } from "./maskCache";
import type { MatcherSync } from "./worker/protocol";

/** One Worker's matcher of the sample: it holds `len` ids, of which the first `synced` are `accepted`'s. */
interface Replica {
  matcher: number;
  synced: number;
  len: number;
}

/** The round row a sample is in (EngineGrammars), its state's length, and the fewest ids it kept since. */
export interface InRow {
  row: object;
  len: number;
  kept: number;
}

export class SequenceGrammar {
  /** Ids accepted so far (the sequence's output ids, when in step). */
  private readonly accepted: number[] = [];
  /** Matchers by Worker: the home's first. */
  private readonly replicas = new Map<number, Replica>();
  private mask: Uint32Array | null = null;
  /** The round row bringing this state's mask (EngineGrammars); null while none is asked for. */
  requested: object | null = null;
  /**
   * The row in flight this sample is in, until the engine takes its result: kept after a rollback
   * made its mask stale (requested null), since a replica may be applying its sync meanwhile; a
   * sample is in one row at a time.
   */
  inRow: InRow | null = null;
  /** Set when a sampled id was refused: the output cannot match any more. */
  broken = false;
  /** Set when the sample cannot go on (its Workers died, its mask timed out): its request fails. */
  failure: Error | null = null;

  constructor(
    /** The pool's Worker that holds its first matcher (its load counts there: grammarPool.ts). */
    public worker: number,
    matcher: number,
    /** The compiled grammar it runs (with the accepted ids, its exact state: maskCache.ts). */
    readonly grammar: GrammarRef,
    /** The grammar's stop ids: accepting one completes it. */
    private readonly stopIds: ReadonlySet<number>,
  ) {
    this.replicas.set(worker, { matcher, synced: 0, len: 0 });
  }

  /** (Worker, matcher) of every replica, the home's first. */
  matchers(): [number, number][] {
    return [...this.replicas].map(([w, r]) => [w, r.matcher]);
  }

  /** Workers holding a replica. */
  get workers(): number[] {
    return [...this.replicas.keys()];
  }

  /** Adds Worker `worker`'s matcher (at the grammar's start); false when it has one. */
  addReplica(worker: number, matcher: number): boolean {
    if (this.replicas.has(worker)) return false;
    this.replicas.set(worker, { matcher, synced: 0, len: 0 });
    return true;
  }

  /** Forgets Worker `worker`'s matcher (the Worker is gone); a lost home moves to another replica. False: none is left. */
  dropReplica(worker: number): boolean {
    this.replicas.delete(worker);
    if (this.worker === worker && this.replicas.size > 0) this.worker = this.replicas.keys().next().value!;
    return this.replicas.size > 0;
  }

  /** What Worker `worker`'s replica lacks to reach this state (it may or may not apply it). */
  syncFor(worker: number): MatcherSync {
    const r = this.replicas.get(worker)!;
    return { matcher: r.matcher, rollback: r.len - r.synced, accept: this.accepted.slice(r.synced) };
  }

  /** Ids Worker `worker`'s replica must undo and accept to reach this state (Infinity: none there). */
  distance(worker: number): number {
    const r = this.replicas.get(worker);
    return r === undefined ? Infinity : r.len - r.synced + this.accepted.length - r.synced;
  }

  /** Worker `worker`'s replica applied the sync of `row` (it took the row). */
  applied(worker: number, row: InRow): void {
    const r = this.replicas.get(worker);
    if (r === undefined) return;
    r.len = row.len;
    r.synced = Math.min(row.len, row.kept);
  }
  /** The ids accepted so far (read-only). */
  get acceptedIds(): readonly number[] {
    return this.accepted;
  }

  get numAccepted(): number {
    return this.accepted.length;
  }

  /**
   * The grammar accepted a stop token: nothing may follow. (XGrammar's masks hold a stop id only
   * where the grammar may end, and accepting it there terminates the matcher.)
   */
  get isTerminated(): boolean {
    const n = this.accepted.length;
    return n > 0 && this.stopIds.has(this.accepted[n - 1]!);
  }

  /** Whether the next token's mask is here. */
  get hasMask(): boolean {
    return this.mask !== null;
  }

  /** The next token's mask; null until it comes. */
  get nextMask(): Uint32Array | null {
    return this.mask;
  }

  /**
   * Accepts one sampled id; false (and `broken`) when the grammar refuses it: it is not in the
   * mask, or the grammar is complete. Without a mask (syncTo) the Worker judges it later.
   */
  accept(id: number): boolean {
    if (this.broken) return false;
    const m = this.mask;
    if (this.isTerminated || (m !== null && ((m[id >>> 5]! >>> (id & 31)) & 1) === 0)) {
      this.broken = true;
      return false;
    }
    this.accepted.push(id);
    this.mask = null;
    this.requested = null;
    return true;
  }

  /** Undoes the last `k` accepted ids. */
  rollback(k: number): void {
    if (k <= 0) return;
    if (k > this.accepted.length) throw new Error(`SequenceGrammar: cannot roll back ${k} of ${this.accepted.length} tokens`);
    this.accepted.length -= k;
    for (const r of this.replicas.values()) r.synced = Math.min(r.synced, this.accepted.length);
    if (this.inRow !== null) this.inRow.kept = Math.min(this.inRow.kept, this.accepted.length);
    this.mask = null;
    this.requested = null;
    this.broken = false;
  }

  /** Brings the grammar to exactly `ids`: rolls back past the first difference, accepts the rest. */
  syncTo(ids: readonly number[]): boolean {
    let same = 0;
    const n = Math.min(ids.length, this.accepted.length);
    while (same < n && ids[same] === this.accepted[same]) same++;
    this.rollback(this.accepted.length - same);
    for (let i = same; i < ids.length; i++) if (!this.accept(ids[i]!)) return false;
    return true;
  }

  /** Whether the grammar holds exactly `ids` (cheap: the length and the last id). */
  inStepWith(ids: readonly number[]): boolean {
    const n = ids.length;
    return n === this.accepted.length && (n === 0 || ids[n - 1] === this.accepted[n - 1]);
  }

  /** Takes the next token's mask (computed for this state, or shared by a sample in it: never written). */
  useMask(mask: Uint32Array): void {
    this.mask = mask;
  }
}
