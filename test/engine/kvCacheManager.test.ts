import { describe, expect, test } from "bun:test";
import { KvCacheManager } from "../../src/engine/kvCache/kvCacheManager";
import { samplingParams } from "../../src/engine/samplingParams";
import { Sequence } from "../../src/engine/sequence";
import { TestEngine } from "./testEngine";

const seqOf = (id: number, prompt: number[], salt = "", promptLogprobs?: number) =>
  new Sequence(id, id, prompt, samplingParams({ maxTokens: 4, cacheSalt: salt, promptLogprobs }));
const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

/** Admits `seq` as commitPlan does: pin its cached run, take the rest fresh, register its prompt. */
function admit(kv: KvCacheManager, seq: Sequence): number {
  const hit = kv.pinCached(seq, kv.cacheableBlocks(seq));
  kv.admit(seq, hit, seq.numTokens);
  kv.registerComputed(seq, seq.numTokens);
  return hit;
}

describe("KvCacheManager", () => {
  test("allocate covers ceil(tokens / blockSize) blocks, free returns them", () => {
    const kv = new KvCacheManager(10, 4);
    const t = kv.allocate(1, 9);
    expect([t.length, t.numTokens, kv.numFreeBlocks]).toEqual([3, 9, 7]);
    kv.append(1, 4); // 13 tokens: a fourth block
    expect(kv.numBlocksHeld(1)).toBe(4);
    expect(kv.free(1)).toBe(4);
    expect(kv.numFreeBlocks).toBe(10);
    expect(kv.free(1)).toBe(0);
    expect(() => kv.append(1, 1)).toThrow();
    expect(() => new KvCacheManager(0, 4)).toThrow();
  });

  test("a released prompt's full blocks are hit by the next prompt with its prefix; the last token is recomputed", () => {
    const kv = new KvCacheManager(16, 4);
    const a = seqOf(0, range(10));
    expect(admit(kv, a)).toBe(0);
    kv.free(0);
    expect(kv.numFreeBlocks).toBe(16);
    expect(kv.numCachedBlocks).toBe(2); // tokens 0..7; the partial third block has no hash
    // Same 8-token prefix, then different tokens: both full blocks are hit.
    const b = seqOf(1, [...range(8), 50, 51, 52]);
    expect(admit(kv, b)).toBe(2);
    // Exactly the cached 8 tokens: the last one is recomputed, so only the first block is hit.
    const c = seqOf(2, range(8));
    expect(kv.cacheableBlocks(c)).toBe(1);
    expect(admit(kv, c)).toBe(1);
    // Shared blocks count once: b holds 3 blocks, c 2, one shared.
    expect(kv.refCount(kv.table(1)!.ids[0]!)).toBe(2);
    expect(kv.numFreeBlocks).toBe(16 - 4);
    expect(kv.stats).toEqual({ queries: 10 + 11 + 8, hits: 8 + 4 });
  });

  test("cache salt: different salts never share a block; equal salts do", () => {
    const kv = new KvCacheManager(16, 4);
    admit(kv, seqOf(0, range(9), "tenant-a"));
    expect(admit(kv, seqOf(1, range(9), "tenant-b"))).toBe(0);
    expect(admit(kv, seqOf(2, range(9)))).toBe(0);
    expect(admit(kv, seqOf(3, range(9), "tenant-a"))).toBe(2);
  });

  test("prompt logprobs skip the cache (their positions must be computed) but fill it", () => {
    const kv = new KvCacheManager(16, 4);
    admit(kv, seqOf(0, range(9)));
    expect(admit(kv, seqOf(1, range(9), "", 2))).toBe(0);
  });

  test("eviction takes the least recently released cached block, never a referenced one", () => {
    const kv = new KvCacheManager(6, 2);
    const a = seqOf(0, range(5)); // blocks 0, 1 (hashed) and 2 (partial)
    admit(kv, a);
    admit(kv, seqOf(1, range(3, 100))); // blocks 3 (hashed) and 4 (partial)
    kv.free(0); // unhashed blocks go to the head, hashed ones to the tail, a prefix's tail first
    kv.free(1);
    expect(kv.numCachedBlocks).toBe(3);
    // Four fresh blocks: the three unhashed ones, then the least recently released cached one,
    // a's second block (its first stays: with equal recency a prefix's tail goes first).
    kv.allocate(9, 8);
    expect(kv.numCachedBlocks).toBe(2);
    const again = seqOf(2, range(5));
    const hit = kv.pinCached(again, kv.cacheableBlocks(again));
    expect(hit).toBe(1);
    expect(kv.table(2)!.ids[0]).toBe(0);
    // Block 0 is referenced again: however short the pool, no allocation takes it.
    expect(kv.numFreeBlocks).toBe(1);
    expect(() => kv.allocate(10, 4)).toThrow();
    expect(kv.table(2)!.ids[0]).toBe(0);
    expect(kv.blockHash(0)).not.toBeNull();
    for (const id of [9, 2]) kv.free(id);
    for (let blk = 0; blk < 6; blk++) expect(kv.refCount(blk)).toBe(0);
  });

  test("failPass uncaches what the failed pass registered", () => {
    const kv = new KvCacheManager(8, 4);
    kv.beginPass();
    admit(kv, seqOf(0, range(9)));
    expect(kv.numCachedBlocks).toBe(2);
    kv.failPass();
    kv.free(0);
    expect(kv.numCachedBlocks).toBe(0);
    expect(admit(kv, seqOf(1, range(9)))).toBe(0);
  });
});

describe("prefix caching through the scheduler", () => {
  test("samples of one request share their prompt blocks within the pass that computes them", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 512, maxSeqs: 8 }, 64, 4);
    const samples = e.addSamples(4, 33, 3);
    const { plan } = e.step();
    // Sample 0 computes the prompt; the others start past its 8 full blocks in the same pass.
    expect(plan.entries.map((x) => x.contextLen)).toEqual([0, 32, 32, 32]);
    const first = e.blocks.table(samples[0]!.id)!;
    for (const s of samples.slice(1)) expect(Array.from(e.blocks.table(s.id)!.ids.subarray(0, 8))).toEqual(Array.from(first.ids.subarray(0, 8)));
    // 9 blocks for sample 0, one more block each for the others.
    expect(e.blocks.numFreeBlocks).toBe(64 - 9 - 3);
    e.drain();
    expect(e.blocks.numFreeBlocks).toBe(64);
  });

  test("with the cache off nothing is shared", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 512, maxSeqs: 8 }, 64, 4, false);
    e.addSamples(4, 33, 3);
    const { plan } = e.step();
    expect(plan.entries.map((x) => x.contextLen)).toEqual([0, 0, 0, 0]);
    expect(e.blocks.numFreeBlocks).toBe(64 - 4 * 9);
  });
});
