/**
 * KvBlockIndex: the set of block hashes one engine holds in its prefix cache, rebuilt from its
 * KV event batches (kvEvents.ts). The serving thread of a replica keeps one (to answer a new
 * subscriber with a snapshot) and the load balancer keeps one per replica (to route on).
 * Parents are kept so that a snapshot is again a list of chains, as vLLM's consumers expect.
 */
import type { BlockHash } from "./blockHash";
import type { KvEvent, KvEventBatch } from "./kvEvents";
import { isResync, storedRuns } from "./kvEvents";

/** What {@link KvBlockIndex.apply} made of a batch. */
export type ApplyResult = "applied" | "gap";

export class KvBlockIndex {
  /** hash -> parent hash (null for a first block). */
  private readonly blocks = new Map<BlockHash, BlockHash | null>();
  /** Sequence number of the last batch applied (0: none yet). */
  seq = 0;
  /** Block size of the engine's chain (0 until its first batch). */
  blockSize = 0;

  /** Hashes held. */
  get size(): number {
    return this.blocks.size;
  }

  has(hash: BlockHash): boolean {
    return this.blocks.has(hash);
  }

  /**
   * Applies the next batch. A batch that starts with AllBlocksCleared is taken whatever its number;
   * any other must be number seq + 1, else nothing changes and the answer is "gap" (the caller
   * resyncs: it asks for a snapshot).
   */
  apply(batch: KvEventBatch): ApplyResult {
    if (!isResync(batch) && batch.seq !== this.seq + 1) return "gap";
    for (const e of batch.events) this.applyEvent(e);
    this.seq = batch.seq;
    if (batch.blockSize > 0) this.blockSize = batch.blockSize;
    return "applied";
  }

  /** Forgets everything (the engine went away; its next stream starts with a snapshot). */
  clear(): void {
    this.blocks.clear();
    this.seq = 0;
  }

  /** Leading hashes of `hashes` (one prompt's chain) that are held: the length of the cached prefix. */
  prefixBlocks(hashes: readonly BlockHash[]): number {
    let k = 0;
    while (k < hashes.length && this.blocks.has(hashes[k]!)) k++;
    return k;
  }

  /** AllBlocksCleared, then every held block as BlockStored runs: a subscriber's first batch. */
  snapshot(): KvEventBatch {
    return { seq: this.seq, blockSize: this.blockSize, events: [{ type: "cleared" }, ...storedRuns(this.blocks)] };
  }

  private applyEvent(e: KvEvent): void {
    if (e.type === "cleared") return this.blocks.clear();
    if (e.type === "removed") {
      for (const h of e.blockHashes) this.blocks.delete(h);
      return;
    }
    let parent = e.parentBlockHash;
    for (const h of e.blockHashes) {
      this.blocks.set(h, parent);
      parent = h;
    }
  }
}
