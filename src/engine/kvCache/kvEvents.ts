/**
 * KV cache events: what a replica tells a cache-aware load balancer about its prefix cache, in
 * the shape of vLLM's KV events (vllm/distributed/kv_events.py):
 *
 *   BlockStored       a run of full blocks became hits: block_hashes[0] chains on parent_block_hash,
 *                     each later hash on the one before it
 *   BlockRemoved      blocks were evicted (or a failed pass took their hashes back)
 *   AllBlocksCleared  forget everything this replica said before (a snapshot follows it)
 *
 * and batched as vLLM's KVEventBatch: one batch per forward pass that changed the cache, with a
 * sequence number (vLLM puts it in a ZMQ frame) so a subscriber can tell a gap. Unlike vLLM,
 * BlockStored carries no token ids: the front end hashes prompts itself with the same chain
 * (blockHash.ts), and ids would add 64 bytes per block of 16 to the 32 of its hash.
 */
import type { BlockHash } from "./blockHash";

export type KvEvent =
  | { type: "stored"; blockHashes: BlockHash[]; parentBlockHash: BlockHash | null }
  | { type: "removed"; blockHashes: BlockHash[] }
  | { type: "cleared" };

/** The events of one forward pass (or a snapshot: `cleared` first, then what is cached). */
export interface KvEventBatch {
  /** 1, 2, 3, ... per engine; a snapshot carries the number of the last batch it includes. */
  seq: number;
  /** Tokens per block (the chain is over blocks of this size). */
  blockSize: number;
  events: KvEvent[];
}

/** Where KvCacheManager reports hash changes (one call per block, in order). */
export interface KvEventSink {
  stored(hash: BlockHash, parent: BlockHash | null): void;
  removed(hash: BlockHash): void;
}

/** True when the batch starts over (AllBlocksCleared first): it needs no predecessor. */
export function isResync(batch: KvEventBatch): boolean {
  return batch.events[0]?.type === "cleared";
}

/** (hash, parent) pairs as BlockStored events, consecutive links of one chain joined in one. */
export function storedRuns(blocks: Iterable<[BlockHash, BlockHash | null]>): KvEvent[] {
  const events: KvEvent[] = [];
  let run: { type: "stored"; blockHashes: BlockHash[]; parentBlockHash: BlockHash | null } | null = null;
  for (const [hash, parent] of blocks) {
    if (run && parent === run.blockHashes[run.blockHashes.length - 1]) run.blockHashes.push(hash);
    else events.push((run = { type: "stored", blockHashes: [hash], parentBlockHash: parent }));
  }
  return events;
}

/**
 * Collects one pass's block changes and hands them out as a batch. A hash stored and removed in
 * the same pass (a failed pass's blocks) cancels out; consecutive blocks of one chain join one
 * BlockStored. So a batch holds at most (blocks the pass filled + blocks it evicted) hashes: a
 * pass's token budget bounds it (B = 512, block 16: at most 32 + 32 + one per sequence).
 */
export class KvEventRecorder implements KvEventSink {
  private seq = 0;
  /** hash -> parent, in the order stored this pass. */
  private readonly storedNow = new Map<BlockHash, BlockHash | null>();
  private readonly removedNow: BlockHash[] = [];

  constructor(readonly blockSize: number) {}

  stored(hash: BlockHash, parent: BlockHash | null): void {
    this.storedNow.set(hash, parent);
  }

  removed(hash: BlockHash): void {
    if (!this.storedNow.delete(hash)) this.removedNow.push(hash);
  }

  /** The pass's batch, or null when nothing changed (no sequence number is spent on it). */
  drain(): KvEventBatch | null {
    if (this.storedNow.size === 0 && this.removedNow.length === 0) return null;
    const events: KvEvent[] = [];
    // Removals first: a block evicted and then filled with another prefix in one pass is
    // removed under its old hash before it is stored under its new one.
    if (this.removedNow.length > 0) events.push({ type: "removed", blockHashes: this.removedNow.splice(0) });
    events.push(...storedRuns(this.storedNow));
    this.storedNow.clear();
    return { seq: ++this.seq, blockSize: this.blockSize, events };
  }
}
