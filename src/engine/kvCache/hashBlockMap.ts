/**
 * HashBlockMap: the prefix cache's two-way map, block hash <-> block id. A block holds at most
 * one hash and a hash names at most one block, and the two directions change together, so the
 * pair cannot disagree.
 *
 * Why not a Map<BlockHash, number>: every pass of a full pool registers ~B / blockSize hashes
 * and evicts as many, and a Map operation on a hash registered long ago misses the CPU cache
 * several times (the string's cell, its hash code, the bucket, the entry): 150-350 ns a delete
 * or a has + set in bench/scheduler.ts on the 2-core dev VM, where commitPlan took 28 us a step;
 * with this map, 15. Here a block's hash leaves by its block id, through a fingerprint kept per
 * block, and a slot is [fingerprint, block] side by side in one typed array.
 *
 *   slots: open addressing, linear probing, backward-shift deletion (no tombstones)
 *          slot i = slots[2i] fingerprint, slots[2i + 1] block + 1 (0 = empty)
 *          capacity: a power of two >= 2 x numBlocks, so the load stays <= 1/2 and never grows
 *
 * The fingerprint mixes a random per-process seed into the hash's first characters, so a client
 * cannot pick prompts whose hashes pile up in one run of slots. A matching fingerprint is
 * confirmed against the block's own hash string.
 */
import type { BlockHash } from "./blockHash";

const SEED = crypto.getRandomValues(new Int32Array(1))[0]!;

/** 32 bits of `hash` (its first 8 characters: 48 bits of a base64 SHA-256), seeded. */
function fingerprint(hash: BlockHash): number {
  let x = SEED;
  // Past a short string's end charCodeAt is NaN, which `^` reads as 0.
  for (let i = 0; i < 8; i++) x = Math.imul(x ^ hash.charCodeAt(i), 0x01000193);
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  return x ^ (x >>> 13);
}

/** Which block holds each cached hash, and which hash each block holds. */
export class HashBlockMap {
  private readonly hashes: (BlockHash | null)[];
  /** Fingerprint of each block's hash (meaningful while it has one). */
  private readonly fingerprints: Int32Array;
  private readonly slots: Int32Array;
  private readonly mask: number;
  private count = 0;

  constructor(numBlocks: number) {
    this.hashes = new Array<BlockHash | null>(numBlocks).fill(null);
    this.fingerprints = new Int32Array(numBlocks);
    let capacity = 4;
    while (capacity < 2 * numBlocks) capacity *= 2;
    this.slots = new Int32Array(2 * capacity);
    this.mask = capacity - 1;
  }

  /** Blocks holding a hash. */
  get size(): number {
    return this.count;
  }

  /** The hash block `b` holds, or null. */
  hashOf(b: number): BlockHash | null {
    return this.hashes[b]!;
  }

  /** The block holding `hash`, or -1. */
  blockOf(hash: BlockHash): number {
    const f = fingerprint(hash);
    const slots = this.slots;
    for (let i = f & this.mask; ; i = (i + 1) & this.mask) {
      const v = slots[2 * i + 1]!;
      if (v === 0) return -1;
      if (slots[2 * i] === f && this.hashes[v - 1] === hash) return v - 1;
    }
  }

  /** Block `b` (holding no hash) takes `hash`, unless another block holds it: returns false then. */
  add(hash: BlockHash, b: number): boolean {
    if (this.hashes[b] !== null) throw new Error(`HashBlockMap: block ${b} already holds a hash`);
    const f = fingerprint(hash);
    const slots = this.slots;
    let i = f & this.mask;
    for (; slots[2 * i + 1] !== 0; i = (i + 1) & this.mask) {
      if (slots[2 * i] === f && this.hashes[slots[2 * i + 1]! - 1] === hash) return false;
    }
    slots[2 * i] = f;
    slots[2 * i + 1] = b + 1;
    this.hashes[b] = hash;
    this.fingerprints[b] = f;
    this.count++;
    return true;
  }

  /** Block `b` drops its hash; returns it (null when it held none). */
  remove(b: number): BlockHash | null {
    const hash = this.hashes[b]!;
    if (hash === null) return null;
    this.hashes[b] = null;
    this.count--;
    const slots = this.slots;
    const mask = this.mask;
    let hole = this.fingerprints[b]! & mask;
    while (slots[2 * hole + 1] !== b + 1) hole = (hole + 1) & mask;
    // Backward shift: an entry later in the run moves into the hole unless its home slot lies
    // after the hole (it would then sit before its home, where a search never looks).
    for (let j = (hole + 1) & mask; slots[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = slots[2 * j]! & mask;
      if (((j - home) & mask) < ((j - hole) & mask)) continue;
      slots[2 * hole] = slots[2 * j]!;
      slots[2 * hole + 1] = slots[2 * j + 1]!;
      hole = j;
    }
    slots[2 * hole] = 0;
    slots[2 * hole + 1] = 0;
    return hash;
  }
}
