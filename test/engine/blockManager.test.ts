import { describe, expect, test } from "bun:test";
import { BlockManager } from "../../src/engine/blockManager";

describe("BlockManager", () => {
  test("allocate covers ceil(tokens / blockSize) blocks, free returns them", () => {
    const bm = new BlockManager(10, 4);
    expect(bm.numFreeBlocks).toBe(10);
    expect(bm.canAllocate(1, 9)).toBe(true);
    const t = bm.allocate(1, 9);
    expect(t.length).toBe(3);
    expect(t.numTokens).toBe(9);
    expect(bm.numBlocksHeld(1)).toBe(3);
    expect(bm.numFreeBlocks).toBe(7);
    expect(bm.free(1)).toBe(3);
    expect(bm.numFreeBlocks).toBe(10);
    expect(bm.table(1)).toBeUndefined();
    expect(bm.free(1)).toBe(0);
  });

  test("zero tokens allocates an empty table", () => {
    const bm = new BlockManager(2, 4);
    expect(bm.allocate(7, 0).length).toBe(0);
    expect(bm.numFreeBlocks).toBe(2);
    expect(bm.canAllocate(7, 0)).toBe(false);
  });

  test("append grows only at block boundaries", () => {
    const bm = new BlockManager(8, 4);
    bm.allocate(1, 3);
    expect(bm.canAppend(1, 1)).toBe(true);
    bm.append(1, 1); // 4 tokens: still one block
    expect(bm.numBlocksHeld(1)).toBe(1);
    bm.append(1, 1); // 5 tokens: a second block
    expect(bm.numBlocksHeld(1)).toBe(2);
    bm.append(1, 12); // 17 tokens: 5 blocks
    expect(bm.numBlocksHeld(1)).toBe(5);
    expect(bm.table(1)!.numTokens).toBe(17);
  });

  test("a failed allocate or append throws and changes nothing", () => {
    const bm = new BlockManager(4, 2);
    bm.allocate(1, 5); // 3 blocks
    expect(bm.canAllocate(2, 3)).toBe(false);
    expect(() => bm.allocate(2, 3)).toThrow();
    expect(bm.table(2)).toBeUndefined();
    expect(bm.numFreeBlocks).toBe(1);
    expect(bm.canAppend(1, 4)).toBe(false);
    const before = Array.from(bm.table(1)!.ids.subarray(0, 3));
    expect(() => bm.append(1, 4)).toThrow();
    expect(bm.numBlocksHeld(1)).toBe(3);
    expect(bm.table(1)!.numTokens).toBe(5);
    expect(Array.from(bm.table(1)!.ids.subarray(0, 3))).toEqual(before);
    expect(bm.numFreeBlocks).toBe(1);
    expect(() => bm.allocate(1, 1)).toThrow(); // already has a table
    expect(() => bm.append(9, 1)).toThrow(); // has none
    expect(bm.canAppend(9, 1)).toBe(false);
  });

  test("blocks are never shared; every id comes back exactly once", () => {
    const bm = new BlockManager(64, 3);
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const live = new Set<number>();
    for (let step = 0; step < 20000; step++) {
      const id = rand(16);
      const r = rand(3);
      if (r === 0 && !live.has(id)) {
        const n = rand(40);
        if (bm.canAllocate(id, n)) {
          bm.allocate(id, n);
          live.add(id);
        } else expect(() => bm.allocate(id, n)).toThrow();
      } else if (r === 1 && live.has(id)) {
        const n = rand(10);
        if (bm.canAppend(id, n)) bm.append(id, n);
        else expect(() => bm.append(id, n)).toThrow();
      } else if (live.has(id)) {
        bm.free(id);
        live.delete(id);
      }
      if (step % 97 === 0) {
        const owned = new Set<number>();
        let held = 0;
        for (const s of live) {
          const t = bm.table(s)!;
          expect(t.length).toBe(bm.blocksFor(t.numTokens));
          for (let i = 0; i < t.length; i++) owned.add(t.ids[i]!);
          held += t.length;
        }
        expect(owned.size).toBe(held);
        expect(held + bm.numFreeBlocks).toBe(64);
      }
    }
    for (const s of live) bm.free(s);
    expect(bm.numFreeBlocks).toBe(64);
  });

  test("rejects bad sizes", () => {
    expect(() => new BlockManager(0, 16)).toThrow();
    expect(() => new BlockManager(4, 0)).toThrow();
  });
});
