/**
 * KvEvents messages (proto/fastgen.proto) as plain objects, and their conversion to and from the
 * engine's KvEventBatch (engine/kvCache/kvEvents.ts). Hashes cross as base64 strings (proto.ts
 * decodes `bytes` so), which is how the engine keys them: no re-encoding on either side.
 */
import type { KvEvent, KvEventBatch } from "../engine/kvCache/kvEvents";

export interface WireKvCacheEvent {
  stored?: { block_hashes: string[]; parent_block_hash?: string | null; block_size: number } | null;
  removed?: { block_hashes: string[] } | null;
  cleared?: object | null;
  event?: "stored" | "removed" | "cleared";
}

export interface WireKvEventBatch {
  seq: number;
  ts: number;
  events: WireKvCacheEvent[];
}

export function kvBatchToWire(batch: KvEventBatch): WireKvEventBatch {
  const events = batch.events.map((e): WireKvCacheEvent => {
    if (e.type === "cleared") return { cleared: {} };
    if (e.type === "removed") return { removed: { block_hashes: e.blockHashes } };
    const stored = { block_hashes: e.blockHashes, block_size: batch.blockSize };
    return { stored: e.parentBlockHash === null ? stored : { ...stored, parent_block_hash: e.parentBlockHash } };
  });
  return { seq: batch.seq, ts: Date.now() / 1000, events };
}

/** The batch of a message; its block size is its BlockStored's (0 when it stores nothing). */
export function kvBatchFromWire(m: WireKvEventBatch): KvEventBatch {
  let blockSize = 0;
  const events = m.events.map((e): KvEvent => {
    if (e.stored) {
      blockSize = e.stored.block_size;
      return { type: "stored", blockHashes: e.stored.block_hashes, parentBlockHash: e.stored.parent_block_hash ?? null };
    }
    if (e.removed) return { type: "removed", blockHashes: e.removed.block_hashes };
    if (e.cleared) return { type: "cleared" };
    throw new Error("KvEvents: an event with no kind");
  });
  return { seq: m.seq, blockSize, events };
}
