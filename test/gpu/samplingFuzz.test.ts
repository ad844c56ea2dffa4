// The sampling fuzz corpus of test/native/samplingFuzz.ts on the device sampler (cuda/sampling.cu)
// beside the CPU one: extreme floats in every parameter and in the logits, several sample rows per
// sequence (sampled and scored) and allowed-token masks (all-zero ones too). Both refuse the same
// batches; for the rest the device draws ids inside the vocabulary that the masks allow, the
// same ids as the CPU.
import { describe, expect, test } from "bun:test";
import { sampleLogits } from "../../src/native";
import { makeBatch } from "../native/helpers";
import { badIds, fuzzCase, outcome } from "../native/samplingFuzz";
import { hasGpu } from "./gpuHelpers";

const SEED = Number(process.env.FASTGEN_SEED) || 25;

describe.skipIf(!hasGpu)("cuda sampling at the edges of float32", () => {
  test("the query of death: a subnormal repetition penalty with temperature > 0", () => {
    const V = 64;
    const logits = Float32Array.from({ length: V }, (_, i) => (i % 7) - 2);
    for (const repetition of [1e-45, 1e-38, 1e-37, 1e-30])
      for (const [topK, topP] of [[0, 1], [5, 1], [0, 0.9], [10, 0.5]] as const) {
        const batch = makeBatch([{ tokens: [1], context: 3, blocks: [0], wants: true, temperature: 1, topK, topP, repetition, penaltyIds: [0, 6] }]);
        expect(sampleLogits("cuda", batch, logits, V).ids[0]).toBe(6);
      }
  });

  for (const vocab of [2, 97, 32000]) {
    test(`vocab ${vocab}, seed ${SEED}: refused alike, else the CPU's ids`, () => {
      let drawn = 0, differ = 0;
      for (let i = 0; i < 150; i++) {
        const c = fuzzCase(SEED, i, vocab);
        const cpu = outcome(() => sampleLogits("cpu", c.batch, c.logits, vocab));
        const gpu = outcome(() => sampleLogits("cuda", c.batch, c.logits, vocab));
        expect(badIds(c, gpu)).toEqual([]);
        expect("ids" in gpu).toBe("ids" in cpu);
        if (!("ids" in gpu) || !("ids" in cpu)) continue;
        drawn++;
        const { rowIndptr, rowMasks } = c.batch;
        for (let r = 0; r < c.batch.rowTokens.length; r++) {
          if (gpu.ids[r] === cpu.ids[r]) continue;
          const s = rowIndptr.findIndex((x) => x > r) - 1;
          differ++;
          console.log(`vocab ${vocab} case ${i} row ${r} of sequence ${s}: cpu ${cpu.ids[r]} gpu ${gpu.ids[r]} T=${c.batch.temperature[s]} top_p=${c.batch.topP[s]} top_k=${c.batch.topK[s]} min_p=${c.batch.minP[s]} rep=${c.batch.repetitionPenalty![s]} mask=${rowMasks?.[r] ?? -1}`);
        }
      }
      console.log(`cuda sampling fuzz vocab ${vocab}: ${drawn} batches drawn, ${differ} rows differ from the cpu`);
      expect(drawn).toBeGreaterThan(20);
      expect(differ).toBe(0);
    });
  }
});
