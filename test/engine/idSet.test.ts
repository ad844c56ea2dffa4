import { expect, test } from "bun:test";
import { IdSet } from "../../src/engine/scheduler/idSet";

test("IdSet matches a Set through growth and O(1) clears", () => {
  const ids = new IdSet();
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 50; round++) {
    ids.clear();
    const ref = new Set<number>();
    const n = rand(3000);
    for (let i = 0; i < n; i++) {
      const id = rand(2) === 0 ? rand(5000) : rand(2 ** 40);
      expect(ids.add(id)).toBe(!ref.has(id));
      ref.add(id);
    }
    expect(ids.size).toBe(ref.size);
    for (let i = 0; i < 500; i++) {
      const id = rand(5000);
      expect(ids.has(id)).toBe(ref.has(id));
    }
    for (const id of ref) expect(ids.has(id)).toBe(true);
  }
});
