// MoE routing (fg_cpu_moe_route: softmax, top-k with ties to the lower id, Mixtral's
// renormalization, the scatter that makes each expert's tokens contiguous) and whole MoE models:
// all tokens to one expert equals the dense model with that expert's weights.
import { describe, expect, test } from "bun:test";
import { cpuMoeRoute, FastgenError } from "../../src/native";
import { buildEngine, makeBatch, maxAbsDiff, randomTokens, randomWeights, relErr, rng, tinySpec } from "./helpers";
import { referenceRoute } from "./reference";

/** The scatter lists are a stable counting sort of the slots by expert. */
function expectScatter(ids: Int32Array, offsets: Int32Array, slots: Int32Array, experts: number) {
  expect(offsets[0]).toBe(0);
  expect(offsets[experts]).toBe(ids.length);
  const seen = new Set<number>();
  for (let e = 0; e < experts; e++) {
    const mine = Array.from(slots.subarray(offsets[e]!, offsets[e + 1]!));
    expect(mine.length).toBe(ids.filter((id) => id === e).length);
    for (const slot of mine) expect(ids[slot]).toBe(e);
    expect(mine).toEqual([...mine].sort((a, b) => a - b));
    mine.forEach((s) => seen.add(s));
  }
  expect(seen.size).toBe(ids.length);
}

describe("moe routing", () => {
  test("top-2 of random logits matches the float64 reference; weights sum to 1", () => {
    const r = rng(5);
    const T = 200, E = 8, k = 2;
    const logits = Float32Array.from({ length: T * E }, () => 4 * r() - 2);
    const got = cpuMoeRoute(logits, T, E, k);
    for (let t = 0; t < T; t++) {
      const ref = referenceRoute(logits.subarray(t * E, (t + 1) * E), k);
      expect(Array.from(got.expertIds.subarray(t * k, (t + 1) * k))).toEqual(ref.ids);
      const w = got.weights.subarray(t * k, (t + 1) * k);
      expect(relErr(w, ref.weights)).toBeLessThan(1e-6);
      expect(Math.abs(w[0]! + w[1]! - 1)).toBeLessThan(1e-6);
      expect(w[0]!).toBeGreaterThanOrEqual(w[1]!);
    }
    expectScatter(got.expertIds, got.expertOffsets, got.tokenSlots, E);
  });

  test("top-1 weight is exactly 1; top-k = E keeps every expert", () => {
    const r = rng(6);
    const logits = Float32Array.from({ length: 30 * 5 }, () => r());
    const one = cpuMoeRoute(logits, 30, 5, 1);
    expect(Array.from(one.weights).every((w) => w === 1)).toBe(true);
    expectScatter(one.expertIds, one.expertOffsets, one.tokenSlots, 5);
    const all = cpuMoeRoute(logits, 30, 5, 5);
    for (let t = 0; t < 30; t++) {
      expect([...all.expertIds.subarray(t * 5, t * 5 + 5)].sort()).toEqual([0, 1, 2, 3, 4]);
      const ref = referenceRoute(logits.subarray(t * 5, t * 5 + 5), 5);
      expect(relErr(all.weights.subarray(t * 5, t * 5 + 5), ref.weights)).toBeLessThan(1e-6);
    }
  });

  test("ties go to the lower expert id", () => {
    const equal = cpuMoeRoute(new Float32Array(4 * 6), 4, 6, 2);  // every logit 0
    expect(Array.from(equal.expertIds)).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
    expect(Array.from(equal.weights)).toEqual(Array(8).fill(0.5));
    const tied = cpuMoeRoute(Float32Array.from([1, 3, 3, 0, 3]), 1, 5, 2);
    expect(Array.from(tied.expertIds)).toEqual([1, 2]);
    expect(Array.from(cpuMoeRoute(Float32Array.from([1, 3, 3, 0, 3]), 1, 5, 1).expertIds)).toEqual([1]);
    const second = cpuMoeRoute(Float32Array.from([5, 1, 2, 2]), 1, 4, 2);
    expect(Array.from(second.expertIds)).toEqual([0, 2]);
  });

  test("all tokens to one expert: one contiguous group in token order", () => {
    const T = 9, E = 4;
    const logits = new Float32Array(T * E);
    for (let t = 0; t < T; t++) logits[t * E + 2] = 10 + t;
    const got = cpuMoeRoute(logits, T, E, 1);
    expect(Array.from(got.expertIds)).toEqual(Array(T).fill(2));
    expect(Array.from(got.expertOffsets)).toEqual([0, 0, 0, T, T]);
    expect(Array.from(got.tokenSlots)).toEqual(Array.from({ length: T }, (_, i) => i));
    const two = cpuMoeRoute(logits, T, E, 2);  // second choice: the three zero logits tie -> expert 0
    expect(Array.from(two.expertOffsets)).toEqual([0, T, T, 2 * T, 2 * T]);
    expect(Array.from(two.tokenSlots.subarray(0, T))).toEqual(Array.from({ length: T }, (_, i) => 2 * i + 1));
    expect(Array.from(two.tokenSlots.subarray(T))).toEqual(Array.from({ length: T }, (_, i) => 2 * i));
  });

  test("no tokens; bad arguments are refused", () => {
    const none = cpuMoeRoute(new Float32Array(0), 0, 3, 2);
    expect(Array.from(none.expertOffsets)).toEqual([0, 0, 0, 0]);
    expect(() => cpuMoeRoute(new Float32Array(6), 2, 3, 4)).toThrow(FastgenError);
    expect(() => cpuMoeRoute(new Float32Array(6), 2, 3, 0)).toThrow(/top_k/);
  });
});

describe("moe models", () => {
  test("a zero router with top-1 sends every token to expert 0: same logits as the dense model", () => {
    const moe = tinySpec({ arch: "mixtral", num_experts: 4, num_experts_per_tok: 1 });
    const dense = tinySpec();
    const w = randomWeights(moe, 21);
    const denseW = new Map([...w].filter(([n]) => !n.includes("experts.") && !n.endsWith("router")));
    for (let l = 0; l < moe.num_layers; l++) {
      w.set(`layers.${l}.router`, new Float32Array(4 * moe.hidden_size));  // all logits tie
      for (const m of ["gate", "up", "down"]) denseW.set(`layers.${l}.${m}`, w.get(`layers.${l}.experts.0.${m}`)!);
    }
    const a = buildEngine(moe, w), b = buildEngine(dense, denseW);
    const tokens = randomTokens(rng(3), 20, moe.vocab_size);
    const batch = makeBatch([{ tokens, context: 0, blocks: [1, 2, 3, 4, 5], wants: true }], { returnLogits: true });
    const x = a.step(batch).logits!, y = b.step(batch).logits!;
    expect(maxAbsDiff(x, y)).toBeLessThan(1e-6);
    a.destroy();
    b.destroy();
  });

  test("a decode batch of many sequences routes each token on its own", () => {
    // Eight one-token sequences in one pass against each one alone: routing and the
    // expert-grouped GEMMs must not mix rows of different sequences.
    const spec = tinySpec({ arch: "mixtral", num_experts: 6, num_experts_per_tok: 2 });
    const w = randomWeights(spec, 8);
    const engine = buildEngine(spec, w);
    const tokens = randomTokens(rng(9), 8, spec.vocab_size);
    const together = engine.step(makeBatch(tokens.map((t, i) => ({ tokens: [t], context: 0, blocks: [i], wants: true })),
      { returnLogits: true })).logits!;
    const V = spec.vocab_size;
    tokens.forEach((t, i) => {
      const alone = engine.step(makeBatch([{ tokens: [t], context: 0, blocks: [20 + i], wants: true }], { returnLogits: true })).logits!;
      expect(maxAbsDiff(together.subarray(i * V, (i + 1) * V), alone)).toBeLessThan(1e-5);
    });
    engine.destroy();
  });
});
