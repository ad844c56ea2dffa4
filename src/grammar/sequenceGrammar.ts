/**
 * SequenceGrammar: one constrained sample's grammar on the engine thread. Its XGrammar matcher
 * lives in one Worker of the engine's grammar pool (grammarPool.ts, worker/grammarService.ts);
 * here are the ids it accepted, the allowed-token mask of its next token, and whether it is
 * complete, broken or failed.
 *
 * A sampled id is judged against the mask it was sampled under: XGrammar's masks are exact (a
 * token is in the mask iff the matcher accepts it; checked over whole vocabularies), so the
 * verdict needs no round trip. The Worker's matcher catches up lazily: it is sent the ids it
 * missed (takeSync) only when its own mask must be computed, not when a cached or shared mask
 * serves, and if it ever refuses one the sample fails (`failure`).
 *
 *   mask: [ceil(vocab / 32)] uint32, bit id % 32 of word id / 32 set = id allowed (fg_batch masks)
 */
import type { GrammarRef } from "./maskCache";
import type { MatcherSync } from "./worker/protocol";

export class SequenceGrammar {
  /** Ids accepted so far (the sequence's output ids, when in step). */
  private readonly accepted: number[] = [];
  /** The Worker's matcher holds `workerLen` ids, of which the first `synced` are `accepted`'s. */
  private synced = 0;
  private workerLen = 0;
  private mask: Uint32Array | null = null;
  /** Id of the ask (EngineGrammars) bringing this state's mask; null while none is asked for. */
  requested: number | null = null;
  /** Set when a sampled id was refused: the output cannot match any more. */
  broken = false;
  /** Set when the sample cannot go on (its Worker died, its mask timed out): its request fails. */
  failure: Error | null = null;

  constructor(
    /** The pool's Worker that holds its matcher (grammarPool.ts). */
    readonly worker: number,
    /** The matcher, in that Worker. */
    readonly matcher: number,
    /** The compiled grammar it runs (with the accepted ids, its exact state: maskCache.ts). */
    readonly grammar: GrammarRef,
    /** The grammar's stop ids: accepting one completes it. */
    private readonly stopIds: ReadonlySet<number>,
  ) {}

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
    this.synced = Math.min(this.synced, this.accepted.length);
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

  /** What the Worker's matcher lacks to reach this state; it holds this state from then on. */
  takeSync(): MatcherSync {
    const sync = { matcher: this.matcher, rollback: this.workerLen - this.synced, accept: this.accepted.slice(this.synced) };
    this.synced = this.workerLen = this.accepted.length;
    return sync;
  }

  /** Takes the next token's mask (computed for this state, or shared by a sample in it: never written). */
  useMask(mask: Uint32Array): void {
    this.mask = mask;
  }
}
