// HashBlockMap (src/engine/kvCache/hashBlockMap.ts): the prefix cache's hash <-> block map must
// answer as a Map of hashes plus an array of blocks' hashes would, through any mix of adds and
// removals (backward-shift deletion in crowded runs of slots included).
import { expect, test } from "bun:test";
import { HashBlockMap } from "../../../src/engine/kvCache/hashBlockMap";

test("HashBlockMap answers as a Map plus an array would, through crowded adds and removals", () => {
  let seed = 11;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  // Base64 SHA-256 strings like the engine's, and a few short ones (fingerprints read 8 chars).
  const pool = Array.from({ length: 400 }, (_, i) => (i % 10 === 0 ? `h${i}` : Bun.SHA256.hash(`block ${i}`, "base64")));
  for (const numBlocks of [1, 3, 8, 64, 300]) {
    const map = new HashBlockMap(numBlocks);
    const byHash = new Map<string, number>();
    const hashOf: (string | null)[] = new Array(numBlocks).fill(null);
    for (let op = 0; op < 20_000; op++) {
      const b = rand(numBlocks);
      const h = pool[rand(pool.length)]!;
      if (rand(3) > 0 && hashOf[b] === null) {
        const added = !byHash.has(h);
        expect(map.add(h, b)).toBe(added);
        if (added) {
          byHash.set(h, b);
          hashOf[b] = h;
        }
      } else {
        const had = hashOf[b]!;
        expect(map.remove(b)).toBe(had);
        if (had !== null) byHash.delete(had);
        hashOf[b] = null;
      }
      expect(map.size).toBe(byHash.size);
      expect(map.blockOf(h)).toBe(byHash.get(h) ?? -1);
      if (op % 97 === 0) {
        for (const x of pool) expect(map.blockOf(x)).toBe(byHash.get(x) ?? -1);
        for (let i = 0; i < numBlocks; i++) expect(map.hashOf(i)).toBe(hashOf[i]!);
      }
    }
  }
});

test("a block that holds a hash cannot take another", () => {
  const map = new HashBlockMap(2);
  expect(map.add("a", 0)).toBe(true);
  expect(() => map.add("b", 0)).toThrow();
  expect(map.add("a", 1)).toBe(false);
  expect(map.remove(1)).toBeNull();
  expect(map.remove(0)).toBe("a");
  expect(map.blockOf("a")).toBe(-1);
});
