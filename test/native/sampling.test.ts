// Sampling: greedy, seeded reproducibility independent of the batch, top-k/top-p/min-p support,
// raw-logit logprobs, penalties and logit bias.
import { afterAll, describe, expect, test } from "bun:test";
import { buildEngine, makeBatch, randomTokens, randomWeights, rng, type SeqChunk, tinySpec } from "./helpers";

const spec = tinySpec({ vocab_size: 64 });
const V = spec.vocab_size;
const engine = buildEngine(spec, randomWeights(spec, 5), { numBlocks: 8192, blockSize: 4 });
afterAll(() => engine.destroy());
const prompt = randomTokens(rng(3), 7, V);

/** n copies of the prompt as separate sequences (2 blocks each), with per-copy options. */
function copies(n: number, opts: (i: number) => Partial<SeqChunk>): SeqChunk[] {
  return Array.from({ length: n }, (_, i) => ({
    tokens: prompt, context: 0, blocks: [2 * i, 2 * i + 1], wants: true, ...opts(i),
  }));
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function logSoftmax(a: Float32Array): number[] {
  const mx = Math.max(...a);
  const lse = mx + Math.log(a.reduce((s, x) => s + Math.exp(x - mx), 0));
  return Array.from(a, (x) => x - lse);
}

// Raw logits of the prompt's last token.
const logits = engine.step(makeBatch(copies(1, () => ({})), { returnLogits: true })).logits!;
const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
const probs = (() => {
  const lp = logSoftmax(logits);
  return lp.map(Math.exp);
})();

describe("sampling", () => {
  test("temperature 0 is the argmax, and top_k = 1 equals it", () => {
    const out = engine.step(makeBatch([...copies(1, () => ({})), ...copies(3, (i) => ({ temperature: 1.5, topK: 1, seed: BigInt(i), blocks: [10 + 2 * i, 11 + 2 * i] }))],
      { returnLogits: true }));
    expect(Array.from(out.ids)).toEqual([order[0]!, order[0]!, order[0]!, order[0]!]);
    expect(argmax(out.logits!.subarray(0, V))).toBe(order[0]!);
  });

  test("same seed -> same tokens, whatever else is in the batch", () => {
    const seeds = [11n, 12n, 13n];
    const alone = seeds.map((seed) =>
      engine.step(makeBatch(copies(1, () => ({ temperature: 1, seed })))).ids[0]);
    const crowd = engine.step(makeBatch([
      { tokens: [1, 2, 3], context: 0, blocks: [3000], wants: true, temperature: 0.7, seed: 1n },
      ...copies(3, (i) => ({ temperature: 1, seed: seeds[2 - i], blocks: [100 + 2 * i, 101 + 2 * i] })),
      { tokens: [4, 5], context: 0, blocks: [3001], wants: false },
    ])).ids;
    expect([crowd[3], crowd[2], crowd[1]]).toEqual(alone);
    // Different seeds do not all agree (64-way distribution at temperature 1).
    const many = engine.step(makeBatch(copies(64, (i) => ({ temperature: 1, seed: BigInt(i) })))).ids;
    expect(new Set(many).size).toBeGreaterThan(3);
  });

  test("temperature sampling follows softmax(logits / T)", () => {
    const n = 3000;
    const out = engine.step(makeBatch(copies(n, (i) => ({ temperature: 1, seed: BigInt(1000 + i) })))).ids;
    const counts = new Array(V).fill(0);
    for (const id of out) counts[id]++;
    let tv = 0;
    for (let i = 0; i < V; i++) tv += Math.abs(counts[i] / n - probs[i]!) / 2;
    expect(tv).toBeLessThan(0.08);
  });

  test("top_k, top_p and min_p restrict the support", () => {
    const n = 1000;
    // top-k: only the k best ids
    const k = 5;
    const topk = engine.step(makeBatch(copies(n, (i) => ({ temperature: 2, topK: k, seed: BigInt(i) })))).ids;
    const allowedK = new Set(order.slice(0, k));
    expect([...topk].every((id) => allowedK.has(id))).toBe(true);
    expect(new Set(topk).size).toBe(k);

    // top-p: the smallest prefix of sorted probs with mass >= p
    const p = 0.6;
    let mass = 0, cut = 0;
    while (mass < p) mass += probs[order[cut++]!]!;
    const allowedP = new Set(order.slice(0, cut));
    const topp = engine.step(makeBatch(copies(n, (i) => ({ temperature: 1, topP: p, seed: BigInt(i) })))).ids;
    expect([...topp].every((id) => allowedP.has(id))).toBe(true);
    expect(new Set(topp).size).toBeGreaterThan(Math.min(2, cut - 1));

    // min-p: drop probs below min_p * max prob
    const minP = 0.3;
    const pmax = probs[order[0]!]!;
    const allowedM = new Set(order.filter((id) => probs[id]! >= minP * pmax));
    const minp = engine.step(makeBatch(copies(n, (i) => ({ temperature: 1, minP, seed: BigInt(i) })))).ids;
    expect([...minp].every((id) => allowedM.has(id))).toBe(true);
    expect(new Set(minp).size).toBe(allowedM.size);
  });

  test("logprobs are a log-softmax of the raw logits, top ids sorted", () => {
    const L = 6;
    const out = engine.step(makeBatch(copies(2, (i) => ({ temperature: 3, seed: BigInt(i), presence: 5, penaltyIds: [order[0]!] })),
      { numLogprobs: L, returnLogits: true }));
    const lp = logSoftmax(out.logits!.subarray(0, V));
    const lse = Math.log(lp.reduce((s, x) => s + Math.exp(x), 0));
    expect(Math.abs(lse)).toBeLessThan(1e-5);
    for (let s = 0; s < 2; s++) {
      expect(out.logprobs[s]!).toBeCloseTo(lp[out.ids[s]!]!, 5);
      const ids = Array.from(out.topIds!.subarray(s * L, (s + 1) * L));
      expect(ids).toEqual(order.slice(0, L));
      const tl = Array.from(out.topLogprobs!.subarray(s * L, (s + 1) * L));
      tl.forEach((x, i) => expect(x).toBeCloseTo(lp[ids[i]!]!, 5));
      for (let i = 1; i < L; i++) expect(tl[i]!).toBeLessThanOrEqual(tl[i - 1]!);
    }
  });

  test("logit bias, presence/frequency and repetition penalties steer greedy", () => {
    const target = order[V - 1]!;  // the least likely id
    const biased = engine.step(makeBatch(copies(1, () => ({ bias: [[target, 100]] })))).ids[0];
    expect(biased).toBe(target);
    // presence: the top id, once seen, drops below the second
    const gap = logits[order[0]!]! - logits[order[1]!]!;
    const pres = engine.step(makeBatch(copies(1, () => ({ presence: gap + 0.5, penaltyIds: [order[0]!] })))).ids[0];
    expect(pres).toBe(order[1]!);
    // frequency counts repeats: half the gap per occurrence, seen three times
    const freq = engine.step(makeBatch(copies(1, () => ({ frequency: gap / 2 + 0.01, penaltyIds: [order[0]!, order[0]!, order[0]!] })))).ids[0];
    expect(freq).toBe(order[1]!);
    // repetition (HF): positive logits divided, negative multiplied
    const rep = 1e4;
    const penalized = Array.from(logits, (x, i) => (i === order[0] || i === order[1] ? (x > 0 ? x / rep : x * rep) : x));
    const expected = argmax(penalized);
    const repOut = engine.step(makeBatch(copies(1, () => ({ repetition: rep, penaltyIds: [order[0]!, order[1]!] })))).ids[0];
    expect(repOut).toBe(expected);
    // prompt ids (penaltyPromptLens) count for repetition only, never presence/frequency
    const promptOnly = makeBatch(copies(1, () => ({ presence: gap + 0.5, penaltyIds: [order[0]!] })));
    promptOnly.penaltyPromptLens = Int32Array.of(1);
    expect(engine.step(promptOnly).ids[0]).toBe(order[0]!);
    const repPrompt = makeBatch(copies(1, () => ({ repetition: rep, presence: 50, penaltyIds: [order[0]!, order[1]!] })));
    repPrompt.penaltyPromptLens = Int32Array.of(2);
    expect(engine.step(repPrompt).ids[0]).toBe(expected);
    // logprobs stay those of the raw logits
    const withLp = engine.step(makeBatch(copies(1, () => ({ bias: [[target, 100]] })), { numLogprobs: 1 }));
    expect(withLp.logprobs[0]!).toBeCloseTo(logSoftmax(logits)[target]!, 5);
  });

  test("a pass without sample rows returns no rows", () => {
    const out = engine.step(makeBatch([{ tokens: prompt, context: 0, blocks: [0, 1], wants: false }], { returnLogits: true }));
    expect(out.ids.length).toBe(0);
    expect(out.logits!.length).toBe(0);
  });
});
