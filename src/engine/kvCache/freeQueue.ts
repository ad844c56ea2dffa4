/**
 * FreeBlockQueue: the blocks no sequence references, in eviction order (head first), as a
 * doubly linked list over block ids so that taking a cached block back out of the middle (a
 * prefix hit) is O(1). Blocks with a hash go to the tail when released (least recently used is
 * evicted first); blocks without one go to the head, since reusing them loses nothing.
 */
export class FreeBlockQueue {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  /** 1 where a block is in the queue: catches double frees and takes of referenced blocks. */
  private readonly queued: Uint8Array;
  private head = -1;
  private tail = -1;
  private count = 0;

  /** Starts with every block queued in id order, so block 0 is handed out first. */
  constructor(numBlocks: number) {
    this.prev = new Int32Array(numBlocks);
    this.next = new Int32Array(numBlocks);
    this.queued = new Uint8Array(numBlocks);
    for (let b = 0; b < numBlocks; b++) this.pushTail(b);
  }

  get size(): number {
    return this.count;
  }

  has(block: number): boolean {
    return this.queued[block] === 1;
  }

  /** The block evicted next, or -1 when none is free. */
  peekHead(): number {
    return this.head;
  }

  pushTail(block: number): void {
    this.claim(block);
    this.prev[block] = this.tail;
    this.next[block] = -1;
    if (this.tail >= 0) this.next[this.tail] = block;
    else this.head = block;
    this.tail = block;
  }

  pushHead(block: number): void {
    this.claim(block);
    this.next[block] = this.head;
    this.prev[block] = -1;
    if (this.head >= 0) this.prev[this.head] = block;
    else this.tail = block;
    this.head = block;
  }

  /** Takes `block` out of the queue, wherever it is. */
  remove(block: number): void {
    if (this.queued[block] !== 1) throw new Error(`free queue: block ${block} is not free`);
    const p = this.prev[block]!;
    const n = this.next[block]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    this.queued[block] = 0;
    this.count--;
  }

  private claim(block: number): void {
    if (this.queued[block] === 1) throw new Error(`free queue: block ${block} is already free`);
    this.queued[block] = 1;
    this.count++;
  }
}
