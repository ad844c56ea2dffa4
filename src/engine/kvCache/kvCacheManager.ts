/**
 * KvCacheManager: the KV pool as reference-counted blocks, one block table per sequence, and
 * (prefix caching) a hash -> block map of full, computed blocks.
 *
 *   block states:  referenced (refCount >= 1, in one or more tables)
 *                  free, cached   (refCount 0, hashed: a later prompt with its prefix may take it back)
 *                  free, empty    (refCount 0, no hash)
 *
 * A block gets its hash when a pass fills it (registerComputed); it keeps it while free, until
 * the free queue hands it out again (eviction, least recently released first). A hashed block is
 * never written again: a sequence writes only past its computed tokens, and a cache hit stops a
 * block short of the prompt's last token. "Free" everywhere (usage, admission, preemption) means
 * refCount 0: distinct referenced blocks are what the pool spends.
 *
 * Token at position p of a sequence lives in table[p / blockSize], slot p % blockSize.
 */
import type { Sequence } from "../sequence";
import { blockHashes } from "./blockHash";
import type { BlockHash } from "./blockHash";
import { FreeBlockQueue } from "./freeQueue";
import { HashBlockMap } from "./hashBlockMap";
import type { KvEventSink } from "./kvEvents";
import type { BlockTable, KvCacheView } from "./kvCacheView";

export type { BlockTable, KvCacheView };

interface MutableTable {
  ids: Int32Array;
  length: number;
  numTokens: number;
  /** Leading blocks already registered (or found) in the cache: registration resumes here. */
  numRegistered: number;
}

/** Reference-counted KV blocks, per-sequence tables and the prefix cache. */
export class KvCacheManager implements KvCacheView {
  private readonly refs: Int32Array;
  /** Cached hash <-> block, both ways. */
  private readonly cached: HashBlockMap;
  private readonly queue: FreeBlockQueue;
  private readonly tables = new Map<number, MutableTable>();
  /** Blocks hashed since the last commit began: uncached again if that pass fails. */
  private registeredThisPass: number[] = [];
  /** Prefix-cache counters, in tokens (vLLM's queries/hits). */
  readonly stats = { queries: 0, hits: 0 };

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
    readonly cachingEnabled = true,
    /** Told every hash that becomes a hit and every one that stops being one (kvEvents.ts). */
    private readonly events: KvEventSink | null = null,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new Error(`numBlocks must be >= 1, got ${numBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`blockSize must be >= 1, got ${blockSize}`);
    this.refs = new Int32Array(numBlocks);
    this.cached = new HashBlockMap(numBlocks);
    this.queue = new FreeBlockQueue(numBlocks);
  }

  get numFreeBlocks(): number {
    return this.queue.size;
  }

  /** Sequences that hold a table. */
  get numSequences(): number {
    return this.tables.size;
  }

  /** Blocks currently holding a hash (referenced or free). */
  get numCachedBlocks(): number {
    return this.cached.size;
  }

  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  numBlocksHeld(seqId: number): number {
    return this.tables.get(seqId)?.length ?? 0;
  }

  table(seqId: number): BlockTable | undefined {
    return this.tables.get(seqId);
  }

  refCount(block: number): number {
    return this.refs[block]!;
  }

  /** True when `block` is in the free queue (refCount 0). */
  isFree(block: number): boolean {
    return this.queue.has(block);
  }

  /** The hash a block holds, or null. */
  blockHash(block: number): BlockHash | null {
    return this.cached.hashOf(block);
  }

  lookup(hash: BlockHash): number {
    return this.cached.blockOf(hash);
  }

  cacheableBlocks(seq: Sequence): number {
    if (!this.cachingEnabled || seq.params.promptLogprobs >= 0) return 0;
    return Math.floor((seq.numTokens - 1) / this.blockSize);
  }

  hashes(seq: Sequence, numBlocks: number): readonly BlockHash[] {
    return blockHashes(seq, this.blockSize, numBlocks);
  }

  /** Gives a sequence without a table fresh blocks for `numTokens` tokens (no cache lookup). */
  allocate(seqId: number, numTokens: number): BlockTable {
    this.startTable(seqId, 0, []);
    return this.append(seqId, numTokens);
  }

  /**
   * Starts `seq`'s table with the cached blocks of its first `numBlocks` hashes that are in the
   * cache now, stopping at the first miss; returns how many it took. Commit calls this for every
   * admitted sequence before any block is handed out, so no eviction can take a planned hit.
   */
  pinCached(seq: Sequence, numBlocks: number): number {
    const hashes = numBlocks > 0 ? this.hashes(seq, numBlocks) : [];
    let k = 0;
    while (k < numBlocks && this.cached.blockOf(hashes[k]!) >= 0) k++;
    this.startTable(seq.id, k, hashes);
    return k;
  }

  /**
   * Completes an admitted sequence's cached run up to `numBlocks` blocks (those a pass planned
   * before it in this commit registered), then grows its table to `numTokens` tokens.
   */
  admit(seq: Sequence, numBlocks: number, numTokens: number): BlockTable {
    const t = this.tableOf(seq.id, "admit");
    if (numBlocks > t.length) {
      const hashes = this.hashes(seq, numBlocks);
      this.reserve(t, numBlocks);
      for (let i = t.length; i < numBlocks; i++) {
        const b = this.cached.blockOf(hashes[i]!);
        if (b < 0) throw new Error(`admit: sequence ${seq.id}'s block ${i} was planned as cached but is not`);
        this.ref(b);
        t.ids[t.length++] = b;
      }
      t.numRegistered = numBlocks;
      t.numTokens = numBlocks * this.blockSize;
    }
    if (this.cachingEnabled && seq.params.promptLogprobs < 0) {
      this.stats.queries += seq.numTokens;
      this.stats.hits += numBlocks * this.blockSize;
    }
    return this.append(seq.id, Math.max(0, numTokens - t.numTokens));
  }

  /** Grows the sequence's table with fresh blocks to cover `numTokens` more tokens. */
  append(seqId: number, numTokens: number): BlockTable {
    const t = this.tableOf(seqId, "append");
    const need = this.blocksFor(t.numTokens + numTokens) - t.length;
    if (numTokens < 0 || need > this.queue.size) {
      throw new Error(`append: sequence ${seqId} needs ${need} more blocks, ${this.queue.size} free`);
    }
    this.reserve(t, t.length + need);
    for (let i = 0; i < need; i++) t.ids[t.length++] = this.takeFresh();
    t.numTokens += numTokens;
    return t;
  }

  /**
   * Registers the blocks of `seq` that are full once its first `numComputed` tokens are in the
   * cache. A hash already cached under another block keeps that block (this one stays private).
   */
  registerComputed(seq: Sequence, numComputed: number): void {
    if (!this.cachingEnabled) return;
    const t = this.tableOf(seq.id, "registerComputed");
    const full = Math.min(Math.floor(numComputed / this.blockSize), t.length);
    if (full <= t.numRegistered) return;
    const hashes = this.hashes(seq, full);
    for (let i = t.numRegistered; i < full; i++) {
      const h = hashes[i]!;
      const b = t.ids[i]!;
      if (this.cached.hashOf(b) !== null || !this.cached.add(h, b)) continue;
      this.registeredThisPass.push(b);
      this.events?.stored(h, i === 0 ? null : hashes[i - 1]!);
    }
    t.numRegistered = full;
  }

  /**
   * Speculative rollback: shrinks `seqId`'s table to its first `numTokens` tokens (its computed
   * ones once verification accepted what it did) and frees the blocks wholly past them. Those
   * held only rejected draft tokens and were never registered: registration stops at a
   * sequence's own computed tokens, so a block that held rejected tokens gets a hash only once
   * later passes have overwritten them with the sequence's real ones and filled it.
   */
  truncate(seqId: number, numTokens: number): void {
    const t = this.tableOf(seqId, "truncate");
    const keep = this.blocksFor(numTokens);
    if (keep > t.length || t.numRegistered > Math.floor(numTokens / this.blockSize)) {
      throw new Error(`truncate: sequence ${seqId} cannot drop to ${numTokens} tokens (${t.length} blocks, ${t.numRegistered} registered)`);
    }
    for (let i = t.length - 1; i >= keep; i--) {
      const b = t.ids[i]!;
      if (this.refs[b] !== 1 || this.cached.hashOf(b) !== null) throw new Error(`truncate: block ${b} of sequence ${seqId} is shared or cached`);
      this.refs[b] = 0;
      this.queue.pushHead(b);
    }
    if (keep < t.length) {
      // A table that shrank is a new object: BlockCsr reuses a table's previous row by identity,
      // trusting that tables only grow.
      this.tables.set(seqId, { ...t, length: keep, numTokens });
    } else t.numTokens = numTokens;
  }

  /** Blocks the current pass's commit registered. */
  get registeredInPass(): readonly number[] {
    return this.registeredThisPass;
  }

  /** A commit begins: what it registers stays cached unless failPass() follows. */
  beginPass(): void {
    this.registeredThisPass.length = 0;
  }

  /** The pass just committed failed: its blocks hold no KV, so none of them may be hit. */
  failPass(): void {
    for (const b of this.registeredThisPass) this.uncache(b);
    this.registeredThisPass.length = 0;
  }

  /**
   * Drops the sequence's references (finish, abort, preemption, rejection); returns how many
   * blocks its table held (0 when it had none). Blocks still referenced elsewhere stay put.
   */
  free(seqId: number): number {
    const t = this.tables.get(seqId);
    if (t === undefined) return 0;
    // Last block first: with equal recency a prefix's tail is evicted before its head.
    for (let i = t.length - 1; i >= 0; i--) {
      const b = t.ids[i]!;
      if (this.refs[b]! < 1) throw new Error(`free: block ${b} of sequence ${seqId} is not referenced`);
      if (--this.refs[b]! > 0) continue;
      if (this.cached.hashOf(b) !== null) this.queue.pushTail(b);
      else this.queue.pushHead(b);
    }
    this.tables.delete(seqId);
    return t.length;
  }

  private startTable(seqId: number, numCached: number, hashes: readonly BlockHash[]): void {
    if (this.tables.has(seqId)) throw new Error(`sequence ${seqId} already has a block table`);
    const t: MutableTable = { ids: new Int32Array(Math.max(4, numCached)), length: 0, numTokens: 0, numRegistered: numCached };
    for (let i = 0; i < numCached; i++) {
      const b = this.cached.blockOf(hashes[i]!);
      this.ref(b);
      t.ids[t.length++] = b;
    }
    t.numTokens = numCached * this.blockSize;
    this.tables.set(seqId, t);
  }

  /** Makes room for `n` ids in the table (capacity doubles). */
  private reserve(t: MutableTable, n: number): void {
    if (n <= t.ids.length) return;
    const grown = new Int32Array(Math.max(t.ids.length * 2, n));
    grown.set(t.ids); // all of it: a view of the first `length` ids would cost more than the copy
    t.ids = grown;
  }

  private ref(b: number): void {
    if (this.refs[b]!++ === 0) this.queue.remove(b);
  }

  /** Takes the head of the free queue, evicting its cached hash. */
  private takeFresh(): number {
    const b = this.queue.peekHead();
    if (b < 0) throw new Error("KV pool exhausted");
    this.queue.remove(b);
    this.uncache(b);
    this.refs[b] = 1;
    return b;
  }

  /** Block `b` is no longer a hit (if it was one). */
  private uncache(b: number): void {
    const h = this.cached.remove(b);
    if (h !== null) this.events?.removed(h);
  }

  private tableOf(seqId: number, what: string): MutableTable {
    const t = this.tables.get(seqId);
    if (t === undefined) throw new Error(`${what}: sequence ${seqId} has no block table`);
    return t;
  }
}
