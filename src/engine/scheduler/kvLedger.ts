/**
 * KvLedger: the KV accounting of one plan, over a read-only view of the pool. Blocks are shared
 * (prefix caching), so a count of blocks is not enough: the ledger keeps each touched block's
 * change of reference count, and a block is free when its count plus that change is 0.
 *
 *   release(seq)   preemption / rejection: its blocks lose a reference (freed when none is left)
 *   probe(seq)     the longest cached run of a waiting sequence's full blocks and what taking it
 *                  costs: a free cached block becomes referenced (1 block), a referenced one is free
 *   admit(seq, k)  takes a run of k blocks plus fresh blocks for the rest of its tokens
 *   complete(...)  an entry fills blocks in this pass: a sequence admitted after it in the same
 *                  plan may take them (both backends write a layer's K/V for the whole pass before
 *                  its attention reads any, so a row may read what another row writes in the pass)
 *                  It only notes the range: hashes and cache lookups wait until an admission asks
 *                  about a block index some range covers (every pass completes blocks; most
 *                  admissions miss the cache at their first block, below every noted range).
 *
 * A run is cached blocks first, then blocks completed earlier in this plan: commitPlan pins the
 * first part before it hands out any block, and finds the second part registered by then.
 * The PlanBuilder plans through it and assertPlan replays the plan through a fresh one.
 */
import type { BlockHash } from "../kvCache/blockHash";
import type { KvCacheView } from "../kvCache/kvCacheManager";
import type { Sequence } from "../sequence";

/** What taking a waiting sequence's cached run would give and cost. */
export interface CachedRun {
  /** Leading full blocks it takes from the cache (its computed tokens start at blocks * blockSize). */
  readonly blocks: number;
  /** Blocks the whole admission takes from the free count: fresh ones plus free cached hits. */
  readonly cost: number;
}

/** Plan-local reference counts, free count and in-plan completed hashes. */
export class KvLedger {
  /** Free blocks once what is recorded so far is committed. */
  free: number;
  /** Reference-count change per touched block. */
  private readonly delta = new Map<number, number>();
  /** (block, previous delta) pairs, so a trial can be rolled back. */
  private readonly undo: number[] = [];
  /** Blocks entries of this plan fill: block indexes [first, end) of seq. */
  private readonly filled: { readonly seq: Sequence; readonly first: number; readonly end: number }[] = [];
  /** The lowest block index a filled range starts at. */
  private lowestFilled = Infinity;
  /** Hashes of the blocks of filled[0, numIndexed) that are not cached now. */
  private pending: Set<BlockHash> | null = null;
  private numIndexed = 0;

  constructor(private readonly kv: KvCacheView) {
    this.free = kv.numFreeBlocks;
  }

  /** Drops `seqId`'s references; returns the blocks that became free. */
  release(seqId: number): number {
    const t = this.kv.table(seqId);
    if (t === undefined) return 0;
    let freed = 0;
    for (let i = 0; i < t.length; i++) if (this.addRef(t.ids[i]!, -1) === 0) freed++;
    this.free += freed;
    return freed;
  }

  /** The cached run `seq` would take now (a waiting sequence). */
  probe(seq: Sequence): CachedRun {
    const kv = this.kv;
    const total = kv.blocksFor(seq.numTokens);
    const max = kv.cacheableBlocks(seq);
    if (max === 0) return { blocks: 0, cost: total };
    // Hashed one block at a time: a run usually ends at its first block, and the blocks past
    // it are hashed when a pass fills them (each block once in its life, either way).
    let k = 0;
    let cost = 0;
    for (; k < max; k++) {
      const b = kv.lookup(kv.hashes(seq, k + 1)[k]!);
      if (b < 0) break;
      if (this.refs(b) === 0) cost++;
    }
    while (k < max && this.isPending(seq, k)) k++;
    return k === 0 ? { blocks: 0, cost: total } : { blocks: k, cost: cost + total - k };
  }

  /**
   * Admits waiting `seq` over its first `blocks` cached blocks; returns the cost, or -1 (nothing
   * recorded) when those blocks are not a cached run it may take.
   */
  admit(seq: Sequence, blocks: number): number {
    const kv = this.kv;
    const total = kv.blocksFor(seq.numTokens);
    if (blocks === 0) {
      this.free -= total;
      return total;
    }
    if (blocks > kv.cacheableBlocks(seq)) return -1;
    const hashes = kv.hashes(seq, blocks);
    let k = 0;
    while (k < blocks && kv.lookup(hashes[k]!) >= 0) k++;
    for (let i = k; i < blocks; i++) if (!this.isPending(seq, i)) return -1;
    let cost = total - blocks;
    for (let i = 0; i < k; i++) if (this.addRef(kv.lookup(hashes[i]!), 1) === 1) cost++;
    this.free -= cost;
    return cost;
  }

  /** Takes `n` fresh blocks (a running sequence growing). */
  take(n: number): void {
    this.free -= n;
  }

  /** `seq`'s tokens [from, to) are computed in this pass: the blocks they fill become hittable. */
  complete(seq: Sequence, from: number, to: number): void {
    const kv = this.kv;
    const bs = kv.blockSize;
    const first = Math.floor(from / bs);
    const full = Math.floor(to / bs);
    if (full <= first || !kv.cachingEnabled) return;
    this.filled.push({ seq, first, end: full });
    this.lowestFilled = Math.min(this.lowestFilled, first);
  }

  /** A point to roll back to. */
  mark(): number {
    return this.undo.length;
  }

  /** Undoes every reference change since `mark` (the free count is the caller's to restore). */
  rollback(mark: number, free: number): void {
    while (this.undo.length > mark) {
      const prev = this.undo.pop()!;
      const b = this.undo.pop()!;
      this.delta.set(b, prev);
    }
    this.free = free;
  }

  /**
   * Whether block `index` of waiting `seq` is filled by an entry of this plan and not cached now
   * (the pool does not change while planning). A hash names its whole prefix, so it can only be
   * a block at the same index: below every filled range the answer is no, without hashing.
   */
  private isPending(seq: Sequence, index: number): boolean {
    if (index < this.lowestFilled) return false;
    const kv = this.kv;
    const hash = kv.hashes(seq, index + 1)[index]!;
    for (; this.numIndexed < this.filled.length; this.numIndexed++) {
      const f = this.filled[this.numIndexed]!;
      const hashes = kv.hashes(f.seq, f.end);
      for (let i = f.first; i < f.end; i++) if (kv.lookup(hashes[i]!) < 0) (this.pending ??= new Set()).add(hashes[i]!);
    }
    return this.pending !== null && this.pending.has(hash);
  }

  private refs(b: number): number {
    return this.kv.refCount(b) + (this.delta.get(b) ?? 0);
  }

  /** Changes block `b`'s count by `d`; returns the new count. */
  private addRef(b: number, d: number): number {
    const prev = this.delta.get(b) ?? 0;
    this.undo.push(b, prev);
    this.delta.set(b, prev + d);
    return this.kv.refCount(b) + prev + d;
  }
}
