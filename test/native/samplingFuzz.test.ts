// The C ABI's sampling parameters fuzzed with extreme floats on the CPU sampler (issue #25: a
// repetition_penalty of 1e-38 with temperature > 0 segfaulted the process). Every case is either
// refused with FG_ERR_INVALID_ARGUMENT or draws ids inside the vocabulary; the named cases pin
// down the crash itself and what the sampler does with an overflowed logit.
import { describe, expect, test } from "bun:test";
import { sampleLogits } from "../../src/native";
import { makeBatch } from "./helpers";
import { badIds, fuzzCase, outcome } from "./samplingFuzz";

const SEED = Number(process.env.FASTGEN_SEED) || 25;

describe("sampling parameters at the edges of float32 (cpu)", () => {
  test("the query of death: a subnormal repetition penalty with temperature > 0", () => {
    const V = 64;
    const logits = Float32Array.from({ length: V }, (_, i) => (i % 7) - 2);
    for (const repetition of [1e-45, 1e-38, 1e-37, 1e-30]) {
      for (const [topK, topP] of [[0, 1], [5, 1], [0, 0.9], [10, 0.5]] as const) {
        const batch = makeBatch([{ tokens: [1], context: 3, blocks: [0], wants: true, temperature: 1, topK, topP, repetition, penaltyIds: [0, 6] }]);
        const id = sampleLogits("cpu", batch, logits, V).ids[0]!;
        // 6 (logit 4) divided by the penalty overflows: it takes all the mass (0's -2 goes to ~0)
        expect(id).toBe(6);
      }
    }
  });

  test("overflowed logits (+inf from the model or a tiny temperature) tie at the top", () => {
    const V = 16;
    const logits = new Float32Array(V).fill(-1);
    logits[3] = Infinity;
    logits[9] = Infinity;
    const seen = new Set<number>();
    for (let s = 0; s < 64; s++) {
      const batch = makeBatch([{ tokens: [1], context: 3, blocks: [0], wants: true, temperature: 1e-42, seed: BigInt(s) }]);
      seen.add(sampleLogits("cpu", batch, logits, V).ids[0]!);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([3, 9]);
  });

  test(`random extreme parameters (seed ${SEED}): refused or in range`, () => {
    let drawn = 0, refused = 0;
    for (let i = 0; i < 400; i++) {
      const c = fuzzCase(SEED, i, i % 3 === 0 ? 2 : 97);
      const o = outcome(() => sampleLogits("cpu", c.batch, c.logits, c.vocab));
      expect(badIds(c, o)).toEqual([]);
      if ("ids" in o) drawn++;
      else refused++;
    }
    console.log(`sampling fuzz: ${drawn} batches drawn, ${refused} refused`);
    expect(drawn).toBeGreaterThan(20); // the corpus must reach the samplers, not only the checks
  });
});
