/**
 * KV events: the engine's KvCacheManager reports every hash it caches and evicts; batches rebuild
 * the same set in a KvBlockIndex (what a replica's serving thread and a load balancer keep).
 */
import { describe, expect, test } from "bun:test";
import { chainBlockHashes } from "../../src/engine/kvCache/blockHash";
import { KvBlockIndex } from "../../src/engine/kvCache/kvBlockIndex";
import { KvCacheManager } from "../../src/engine/kvCache/kvCacheManager";
import { KvEventRecorder } from "../../src/engine/kvCache/kvEvents";
import { samplingParams } from "../../src/engine/samplingParams";
import { Sequence } from "../../src/engine/sequence";
import { kvBatchFromWire, kvBatchToWire } from "../../src/grpc/kvEventsWire";

const seqOf = (id: number, prompt: number[], salt = "") => new Sequence(id, id, prompt, samplingParams({ maxTokens: 4, cacheSalt: salt }));
const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

function admit(kv: KvCacheManager, seq: Sequence): number {
  const hit = kv.pinCached(seq, kv.cacheableBlocks(seq));
  kv.admit(seq, hit, seq.numTokens);
  kv.registerComputed(seq, seq.numTokens);
  return hit;
}

/** Every hash the manager holds (the truth the events must rebuild). */
function cachedHashes(kv: KvCacheManager): Set<string> {
  const s = new Set<string>();
  for (let b = 0; b < kv.numBlocks; b++) {
    const h = kv.blockHash(b);
    if (h !== null && kv.lookup(h) === b) s.add(h);
  }
  return s;
}

describe("KvEventRecorder", () => {
  test("a prompt's full blocks are one BlockStored run chained from no parent; eviction is BlockRemoved", () => {
    const rec = new KvEventRecorder(4);
    const kv = new KvCacheManager(4, 4, true, rec);
    const seq = seqOf(0, range(9));
    admit(kv, seq);
    const hashes = chainBlockHashes(Int32Array.from(range(9)), 4, 2, "");
    expect(rec.drain()).toEqual({ seq: 1, blockSize: 4, events: [{ type: "stored", blockHashes: hashes, parentBlockHash: null }] });
    expect(rec.drain()).toBeNull(); // nothing changed: no batch, no number spent
    kv.free(0);
    kv.allocate(1, 16); // the whole pool: both cached blocks are evicted
    expect(rec.drain()).toEqual({ seq: 2, blockSize: 4, events: [{ type: "removed", blockHashes: [hashes[1]!, hashes[0]!] }] });
  });

  test("a later block of a sequence chains on the block before it; a failed pass's blocks cancel out", () => {
    const rec = new KvEventRecorder(4);
    const kv = new KvCacheManager(8, 4, true, rec);
    const seq = seqOf(0, range(5));
    admit(kv, seq);
    const [h0] = chainBlockHashes(Int32Array.from(range(5)), 4, 1, "");
    rec.drain();
    for (const t of [6, 7, 8]) seq.appendOutput(t);
    kv.append(0, 3);
    kv.registerComputed(seq, 8);
    const h1 = chainBlockHashes(Int32Array.from(range(8)), 4, 2, "")[1]!;
    expect(rec.drain()!.events).toEqual([{ type: "stored", blockHashes: [h1], parentBlockHash: h0! }]);
    kv.beginPass();
    admit(kv, seqOf(1, range(9, 50)));
    kv.failPass();
    expect(rec.drain()).toBeNull();
  });

  test("random traffic: the index rebuilt from the batches (through the wire form) is the cache", () => {
    let x = 12345;
    const rand = (n: number) => ((x = (x * 1103515245 + 12345) & 0x7fffffff), x % n);
    const rec = new KvEventRecorder(4);
    const kv = new KvCacheManager(24, 4, true, rec);
    const index = new KvBlockIndex();
    const live: number[] = [];
    for (let i = 0; i < 400; i++) {
      if (live.length > 0 && (rand(3) === 0 || kv.numFreeBlocks < 8)) kv.free(live.splice(rand(live.length), 1)[0]!);
      else {
        // Prompts over a few shared prefixes and salts, so hits, evictions and duplicates mix.
        const prompt = [...range(4 * rand(4), 100 * rand(3)), ...range(1 + rand(12), 1000 + i)];
        const seq = seqOf(i, prompt, rand(4) === 0 ? "s" : "");
        kv.beginPass();
        admit(kv, seq);
        if (rand(10) === 0) kv.failPass();
        live.push(i);
      }
      const batch = rec.drain();
      if (batch) expect(index.apply(kvBatchFromWire(JSON.parse(JSON.stringify(kvBatchToWire(batch)))))).toBe("applied");
      expect(new Set(index.snapshot().events.flatMap((e) => (e.type === "stored" ? e.blockHashes : [])))).toEqual(cachedHashes(kv));
    }
    expect(index.size).toBeGreaterThan(0);
  });
});

describe("KvBlockIndex", () => {
  test("a batch out of sequence is a gap and changes nothing; a snapshot is taken whatever its number", () => {
    const index = new KvBlockIndex();
    expect(index.apply({ seq: 1, blockSize: 4, events: [{ type: "stored", blockHashes: ["a", "b"], parentBlockHash: null }] })).toBe("applied");
    expect(index.apply({ seq: 3, blockSize: 4, events: [{ type: "removed", blockHashes: ["a"] }] })).toBe("gap");
    expect([index.has("a"), index.seq]).toEqual([true, 1]);
    expect(index.prefixBlocks(["a", "b", "c"])).toBe(2);
    expect(index.prefixBlocks(["b", "a"])).toBe(0 + 2); // both held; order is the caller's chain
    const snap = { seq: 9, blockSize: 4, events: [{ type: "cleared" as const }, { type: "stored" as const, blockHashes: ["x"], parentBlockHash: null }] };
    expect(index.apply(snap)).toBe("applied");
    expect([index.has("a"), index.has("x"), index.seq]).toEqual([false, true, 9]);
    // A snapshot of it rebuilds it, chains and all.
    const copy = new KvBlockIndex();
    index.apply({ seq: 10, blockSize: 4, events: [{ type: "stored", blockHashes: ["y", "z"], parentBlockHash: "x" }] });
    copy.apply(index.snapshot());
    expect(copy.snapshot()).toEqual(index.snapshot());
    expect(copy.snapshot().events).toEqual([{ type: "cleared" }, { type: "stored", blockHashes: ["x", "y", "z"], parentBlockHash: null }]);
  });
});
