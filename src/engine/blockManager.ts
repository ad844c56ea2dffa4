/**
 * BlockManager: the KV pool as a free list of block ids plus one block table per sequence.
 * Token at position p of a sequence lives in table[p / blockSize], slot p % blockSize.
 *
 * Check/act pairs (canAllocate/allocate, canAppend/append): the act throws when its check fails
 * and changes nothing in that case, so a failed allocation never leaves half a table behind.
 */

/** A sequence's blocks, in position order; ids[0, length) are valid. */
export interface BlockTable {
  readonly ids: Int32Array;
  readonly length: number;
  /**
   * Tokens declared through allocate/append (<= length * blockSize). The owner may fill the
   * rest of the last block without declaring them: the engine appends only at block edges.
   */
  readonly numTokens: number;
}

/** What the (pure) scheduler may read of the pool. */
export interface BlockManagerView {
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly numFreeBlocks: number;
  /** Blocks in the sequence's table (0 when it has none). */
  numBlocksHeld(seqId: number): number;
  /** Blocks needed to hold `numTokens` tokens. */
  blocksFor(numTokens: number): number;
}

interface MutableTable {
  ids: Int32Array;
  length: number;
  numTokens: number;
}

/** The KV pool's free list and the per-sequence block tables. */
export class BlockManager implements BlockManagerView {
  private readonly freeList: Int32Array;
  private numFree: number;
  /** 1 where a block is on the free list: catches double frees. */
  private readonly isFree: Uint8Array;
  private readonly tables = new Map<number, MutableTable>();

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new Error(`numBlocks must be >= 1, got ${numBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`blockSize must be >= 1, got ${blockSize}`);
    this.freeList = new Int32Array(numBlocks);
    // Stack: pop from the end, so block 0 is handed out first.
    for (let i = 0; i < numBlocks; i++) this.freeList[i] = numBlocks - 1 - i;
    this.numFree = numBlocks;
    this.isFree = new Uint8Array(numBlocks).fill(1);
  }

  get numFreeBlocks(): number {
    return this.numFree;
  }

  /** Sequences that hold a table. */
  get numSequences(): number {
    return this.tables.size;
  }

  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  numBlocksHeld(seqId: number): number {
    return this.tables.get(seqId)?.length ?? 0;
  }

  /** The sequence's table, or undefined when it holds none. */
  table(seqId: number): BlockTable | undefined {
    return this.tables.get(seqId);
  }

  canAllocate(seqId: number, numTokens: number): boolean {
    return !this.tables.has(seqId) && numTokens >= 0 && this.blocksFor(numTokens) <= this.numFree;
  }

  /** Gives a sequence without a table enough blocks for `numTokens` tokens. */
  allocate(seqId: number, numTokens: number): BlockTable {
    if (this.tables.has(seqId)) throw new Error(`allocate: sequence ${seqId} already has a block table`);
    const need = this.blocksFor(numTokens);
    if (numTokens < 0 || need > this.numFree) {
      throw new Error(`allocate: sequence ${seqId} needs ${need} blocks for ${numTokens} tokens, ${this.numFree} free`);
    }
    const table: MutableTable = { ids: new Int32Array(Math.max(4, need)), length: 0, numTokens };
    this.take(table, need);
    this.tables.set(seqId, table);
    return table;
  }

  canAppend(seqId: number, numTokens: number): boolean {
    const t = this.tables.get(seqId);
    return t !== undefined && numTokens >= 0 && this.blocksFor(t.numTokens + numTokens) - t.length <= this.numFree;
  }

  /** Grows the sequence's table to cover `numTokens` more tokens. */
  append(seqId: number, numTokens: number): BlockTable {
    const t = this.tables.get(seqId);
    if (t === undefined) throw new Error(`append: sequence ${seqId} has no block table`);
    const need = this.blocksFor(t.numTokens + numTokens) - t.length;
    if (numTokens < 0 || need > this.numFree) {
      throw new Error(`append: sequence ${seqId} needs ${need} more blocks, ${this.numFree} free`);
    }
    if (t.length + need > t.ids.length) {
      const grown = new Int32Array(Math.max(t.ids.length * 2, t.length + need));
      grown.set(t.ids.subarray(0, t.length));
      t.ids = grown;
    }
    this.take(t, need);
    t.numTokens += numTokens;
    return t;
  }

  /** Returns every block of the sequence to the free list; a no-op when it holds none. */
  free(seqId: number): number {
    const t = this.tables.get(seqId);
    if (t === undefined) return 0;
    for (let i = t.length - 1; i >= 0; i--) {
      const b = t.ids[i]!;
      if (this.isFree[b]) throw new Error(`free: block ${b} of sequence ${seqId} is already free`);
      this.isFree[b] = 1;
      this.freeList[this.numFree++] = b;
    }
    this.tables.delete(seqId);
    return t.length;
  }

  private take(t: MutableTable, n: number): void {
    for (let i = 0; i < n; i++) {
      const b = this.freeList[--this.numFree]!;
      this.isFree[b] = 0;
      t.ids[t.length++] = b;
    }
  }
}
