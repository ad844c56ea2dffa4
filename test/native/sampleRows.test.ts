// The engine contract v2 on the CPU (issue #16 step 3): sample rows, several per sequence, sampled
// or scored, give the same logits, ids and logprobs as one pass per row; allowed-token masks
// restrict what is chosen (greedy, top-k, top-p, the draw) but not the logprobs; and the
// validation of rows and masks.
import { afterAll, describe, expect, test } from "bun:test";
import { sampleLogits } from "../../src/native";
import { buildEngine, makeBatch, randomTokens, randomWeights, rng, tinySpec } from "./helpers";

const spec = tinySpec({ vocab_size: 70 });  // 3 mask words, the last one partly past the vocabulary
const V = spec.vocab_size, WORDS = Math.ceil(V / 32);
const engine = buildEngine(spec, randomWeights(spec, 9), { numBlocks: 512, blockSize: 4 });
afterAll(() => engine.destroy());
const prompt = randomTokens(rng(17), 9, V);

/** A mask allowing exactly `ids`. */
function maskOf(ids: number[]): Uint32Array {
  const m = new Uint32Array(WORDS);
  for (const id of ids) m[id >> 5]! |= 1 << (id & 31);
  return m;
}

function logSoftmax(a: ArrayLike<number>): number[] {
  const mx = Math.max(...Array.from(a));
  const lse = mx + Math.log(Array.from(a).reduce((s, x) => s + Math.exp(x - mx), 0));
  return Array.from(a, (x) => x - lse);
}

function argmaxOf(row: ArrayLike<number>, allowed: (id: number) => boolean = () => true): number {
  let best = -1;
  for (let i = 0; i < row.length; i++) if (allowed(i) && (best < 0 || row[i]! > row[best]!)) best = i;
  return best;
}

// The logits after each prompt token, one pass per prefix (the reference every row must match).
const ref = prompt.map((_, p) =>
  engine.step(makeBatch([{ tokens: prompt.slice(0, p + 1), context: 0, blocks: [100, 101, 102], wants: true }], { returnLogits: true })).logits!);

describe("sample rows", () => {
  test("several rows of one sequence: scored rows report their target, sampled rows draw, each at its own position", () => {
    // rows at tokens 2 (scored), 4 (sampled, seeded), 6 (scored), 8 (greedy... the last token)
    const batch = makeBatch([{
      tokens: prompt, context: 0, blocks: [0, 1, 2], temperature: 1, seed: 5n,
      rows: [{ at: 2, target: prompt[3]! }, { at: 4 }, { at: 6, target: prompt[7]! }], wants: true,
    }], { returnLogits: true, numLogprobs: 3 });
    const out = engine.step(batch);
    expect(Array.from(batch.rowIndptr)).toEqual([0, 4]);
    const at = [2, 4, 6, 8];
    at.forEach((p, r) => {
      const row = out.logits!.subarray(r * V, (r + 1) * V);
      let worst = 0;
      for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(row[i]! - ref[p]![i]!));
      expect(worst).toBeLessThan(1e-4);
      const lp = logSoftmax(ref[p]!);
      expect(out.logprobs[r]!).toBeCloseTo(lp[out.ids[r]!]!, 4);
      const top = Array.from(out.topIds!.subarray(r * 3, r * 3 + 3));
      expect(top[0]).toBe(argmaxOf(ref[p]!));
    });
    expect(out.ids[0]).toBe(prompt[3]!);
    expect(out.ids[2]).toBe(prompt[7]!);
    // A sampled row's draw depends only on (seed, the position it predicts): the same row alone,
    // at the same position, draws the same token.
    for (const [r, p] of [[1, 4], [3, 8]] as const) {
      const alone = engine.step(makeBatch([{ tokens: prompt.slice(0, p + 1), context: 0, blocks: [200, 201, 202], wants: true, temperature: 1, seed: 5n }]));
      expect(out.ids[r]).toBe(alone.ids[0]!);
    }
  });

  test("rows of several sequences keep to their own sequence's parameters", () => {
    const batch = makeBatch([
      { tokens: prompt.slice(0, 5), context: 0, blocks: [10, 11], rows: [{ at: 1, target: prompt[2]! }, { at: 3 }], wants: false },
      { tokens: [prompt[0]!], context: 0, blocks: [12], wants: true, bias: [[7, 1000]] },
      { tokens: prompt.slice(0, 3), context: 0, blocks: [13], rows: [{ at: 0 }], wants: true },
    ], { returnLogits: true });
    const out = engine.step(batch);
    expect(Array.from(batch.rowIndptr)).toEqual([0, 2, 3, 5]);
    expect(Array.from(out.ids)).toEqual([prompt[2]!, argmaxOf(ref[3]!), 7, argmaxOf(ref[0]!), argmaxOf(ref[2]!)]);
  });

  test("speculative verification shape: k proposed tokens and the bonus are k + 1 sampled rows, seeded by position", () => {
    const k = 4;
    const batch = makeBatch([{ tokens: prompt.slice(4, 4 + k + 1), context: 4, blocks: [0, 1, 2], rows: Array.from({ length: k }, (_, at) => ({ at })), wants: true, temperature: 0.8, topP: 0.9, seed: 77n }]);
    // write the prefix first (positions 0..3), then verify
    engine.step(makeBatch([{ tokens: prompt.slice(0, 4), context: 0, blocks: [0, 1, 2] }]));
    const out = engine.step(batch);
    for (let j = 0; j <= k; j++) {
      const alone = engine.step(makeBatch([{ tokens: prompt.slice(0, 4 + j + 1), context: 0, blocks: [300, 301, 302], wants: true, temperature: 0.8, topP: 0.9, seed: 77n }]));
      expect(out.ids[j]).toBe(alone.ids[0]!);
    }
  });
});

describe("masks (cpu)", () => {
  const last = ref[prompt.length - 1]!;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => last[b]! - last[a]! || a - b);
  const chunk = (o: object = {}) => ({ tokens: prompt, context: 0, blocks: [0, 1, 2], wants: true, mask: 0, ...o });

  test("greedy picks the best allowed id; logprobs stay those of the raw logits", () => {
    const allowed = [order[5]!, order[40]!, 69];
    const out = engine.step(makeBatch([chunk()], { masks: maskOf(allowed), numLogprobs: 2 }));
    expect(out.ids[0]).toBe(order[5]!);
    const lp = logSoftmax(last);
    expect(out.logprobs[0]!).toBeCloseTo(lp[order[5]!]!, 4);
    expect(Array.from(out.topIds!)).toEqual([order[0]!, order[1]!]);  // the unmasked top
  });

  test("sampling draws only allowed ids, under top-k, top-p and min-p alike", () => {
    const allowed = [order[2]!, order[3]!, order[30]!, order[60]!];
    const set = new Set(allowed);
    for (const extra of [{}, { topK: 3 }, { topK: 50 }, { topP: 0.5 }, { minP: 0.2 }, { topK: 10, topP: 0.3 }]) {
      const seen = new Set<number>();
      for (let s = 0; s < 48; s++) {
        const out = engine.step(makeBatch([chunk({ temperature: 3, seed: BigInt(s), ...extra })], { masks: maskOf(allowed) }));
        seen.add(out.ids[0]!);
      }
      for (const id of seen) expect(set.has(id)).toBe(true);
      if (Object.keys(extra).length === 0) expect(seen.size).toBeGreaterThan(1);
    }
  });

  test("a mask applies after penalties and bias: a huge bias on a masked id does not win", () => {
    const out = engine.step(makeBatch([chunk({ bias: [[order[0]!, 1e6]] })], { masks: maskOf([order[9]!]) }));
    expect(out.ids[0]).toBe(order[9]!);
  });

  test("rows pick their own mask; -1 is none; one mask serves several rows", () => {
    const masks = new Uint32Array(2 * WORDS);
    masks.set(maskOf([order[7]!]), 0);
    masks.set(maskOf([order[8]!]), WORDS);
    const out = engine.step(makeBatch([
      chunk({ blocks: [0, 1, 2], mask: 1 }),
      chunk({ blocks: [3, 4, 5], mask: -1 }),
      chunk({ blocks: [6, 7, 8], mask: 0 }),
      chunk({ blocks: [9, 10, 11], mask: 1 }),
    ], { masks }));
    expect(Array.from(out.ids)).toEqual([order[8]!, order[0]!, order[7]!, order[8]!]);
  });

  test("everything masked (an all-zero mask, or every allowed id at -inf) falls back to id 0", () => {
    for (const temperature of [0, 1]) {
      const zero = engine.step(makeBatch([chunk({ temperature, seed: 3n })], { masks: new Uint32Array(WORDS) }));
      expect(zero.ids[0]).toBe(0);
      const banned = engine.step(makeBatch([chunk({ temperature, bias: [[order[4]!, -Infinity]] })], { masks: maskOf([order[4]!]) }));
      expect(banned.ids[0]).toBe(0);
    }
  });

  test("bits past the vocabulary are ignored", () => {
    const m = maskOf([order[3]!]);
    m[WORDS - 1]! |= ~((1 << (V % 32)) - 1);  // ids 70..95 do not exist
    expect(engine.step(makeBatch([chunk()], { masks: m })).ids[0]).toBe(order[3]!);
  });

  test("fg_sample_logits: the same masks on given logits", () => {
    const logits = Float32Array.from({ length: 2 * V }, (_, i) => Math.sin(i * 1.7) * 4);
    const masks = maskOf([5, 33, 66]);
    const batch = makeBatch([{ tokens: [1, 2], context: 0, blocks: [0], rows: [{ at: 0, mask: 0 }], wants: true, mask: -1 }], { masks });
    const out = sampleLogits("cpu", batch, logits, V);
    expect(out.ids[0]).toBe(argmaxOf(logits.subarray(0, V), (id) => [5, 33, 66].includes(id)));
    expect(out.ids[1]).toBe(argmaxOf(logits.subarray(V)));
  });
});

describe("row and mask validation", () => {
  const base = () => makeBatch([{ tokens: [1, 2, 3], context: 0, blocks: [0], rows: [{ at: 0 }], wants: true }]);
  const refused = (mutate: (b: ReturnType<typeof base>) => void, message: string) => {
    const b = base();
    mutate(b);
    expect(() => engine.step(b)).toThrow(message);
  };

  test("bad rows are refused with a message naming them", () => {
    refused((b) => (b.rowTokens[1] = 0), "row 1 of sequence 0: row_tokens must increase within a sequence (0 after 0)");
    refused((b) => (b.rowTokens[1] = 3), "row 1 of sequence 0: row_tokens = 3 is outside its tokens [0, 3)");
    refused((b) => (b.rowTargets![0] = V), `row 0: row_targets = ${V} is outside the vocabulary (or -1 to sample)`);
    refused((b) => (b.rowTargets![0] = -2), "row 0: row_targets = -2 is outside the vocabulary");
    refused((b) => (b.rowIndptr[0] = 1), "row_indptr[0] must be 0, got 1");
    refused((b) => {
      b.rowMasks = Int32Array.of(0, -1);
    }, "row 0: row_masks = 0 is not -1 or a mask in [0, 0)");
    refused((b) => {
      b.masks = new Uint32Array(WORDS);
      b.rowMasks = Int32Array.of(1, -1);
    }, "row 0: row_masks = 1 is not -1 or a mask in [0, 1)");
    refused((b) => (b.temperature[0] = NaN), "sequence 0: temperature must be finite");
  });

  test("a sequence with only scored rows needs no valid sampling parameters", () => {
    const b = makeBatch([{ tokens: [1, 2, 3], context: 0, blocks: [0], rows: [{ at: 1, target: 4 }] }]);
    b.temperature[0] = NaN;
    expect(Array.from(engine.step(b).ids)).toEqual([4]);
  });

  test("the binding checks array lengths before the library reads them", () => {
    const b = base();
    b.rowTokens = b.rowTokens.subarray(0, 1);
    expect(() => engine.step(b)).toThrow("fg_step: rowTokens has 1 entries, needs 2");
    const c = base();
    c.rowTargets = Int32Array.of(-1);
    expect(() => engine.step(c)).toThrow("fg_step: rowTargets has 1 entries, needs 2");
  });
});
