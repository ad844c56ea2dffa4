// Per-row penalties of speculative verification on the device (issue #22), against the CPU:
//  - fg_sample_logits "cuda": verification row j draws what one row alone draws with drafts
//    0..j-1 appended to its penalty list (test/native/rowPenalties.ts), and the same ids as the
//    CPU sampler on the same logits (logprobs within 1e-4), vocab up to 151936;
//  - fg_step: a verification pass whose penalty list lives in a slot (the device reads it
//    flattened, its drafts from the pass's tokens on the device) picks on its own logits what the
//    CPU sampler picks on those logits with the whole list.
import { afterAll, describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/native/modelSpec";
import { NativeEngine, sampleLogits, type Backend, type KvConfig } from "../../src/native";
import { makeBatch, randomTokens, randomWeights, rng, tensorShapes, tinySpec } from "../native/helpers";
import type { Weights } from "../native/reference";
import { mismatches, runRowPenalties, verifyCases } from "../native/rowPenalties";
import { hasGpu, roundBf16, engineFor } from "./gpuHelpers";

const engines: NativeEngine[] = [];
afterAll(() => engines.forEach((e) => e.destroy()));

describe.skipIf(!hasGpu)("per-row penalties: cuda vs cpu", () => {
  for (const vocab of [1000, 32000, 151936]) {
    test(`fg_sample_logits, vocab ${vocab}: rows as if the drafts before them were generated; the CPU's ids`, () => {
      const cases = verifyCases(vocab, vocab, 40);
      const gpu = runRowPenalties("cuda", vocab, cases);
      expect(mismatches(gpu, cases)).toEqual([]);
      expect(gpu.draftsMattered).toBeGreaterThan(0);
      const cpu = runRowPenalties("cpu", vocab, cases);
      let same = 0;
      const rows = cpu.verified.ids.length;
      for (let r = 0; r < rows; r++) {
        if (gpu.verified.ids[r] === cpu.verified.ids[r]) same++;
        else console.log(`vocab ${vocab} row ${r}: cpu ${cpu.verified.ids[r]} gpu ${gpu.verified.ids[r]}`);
        expect(Math.abs(gpu.verified.logprobs[r]! - cpu.verified.logprobs[r]!)).toBeLessThan(1e-4);
      }
      console.log(`per-row penalties vocab ${vocab}: ${same}/${rows} rows identical, drafts changed ${gpu.draftsMattered} of ${gpu.rows} picks`);
      expect(same).toBe(rows);
    });
  }

  test("fg_step: a verification pass with its list in a slot picks what the CPU picks on its logits", () => {
    const spec = tinySpec({ vocab_size: 1000, hidden_size: 256, intermediate_size: 512, num_heads: 8, num_kv_heads: 2, head_dim: 32, max_position_embeddings: 2048 });
    const V = spec.vocab_size;
    const w = randomWeights(spec, 43);
    for (const [k, v] of w) w.set(k, roundBf16(v));
    const gpu = engineFor("cuda", spec, w, { numBlocks: 64, blockSize: 16 });
    engines.push(gpu);
    const r = rng(9);
    const prompt = randomTokens(r, 30, V);
    const params = { temperature: 0.8, seed: 5n, presence: 1.5, frequency: 1, repetition: 1.3 };
    const pre = makeBatch([{ tokens: prompt, context: 0, blocks: [0, 1, 2], wants: true, ...params }]);
    pre.penaltyIds = Int32Array.from(prompt);
    pre.penaltyIndptr = Int32Array.of(0, prompt.length);
    pre.penaltyPromptLens = Int32Array.of(prompt.length);
    pre.penaltySlots = Int32Array.of(7);
    pre.penaltySlotKeep = Int32Array.of(0);
    const t = gpu.step(pre).ids[0]!;
    // 6 drafts, some repeating: rows after a repeated id see it counted twice
    const d = randomTokens(r, 3, V);
    const drafts = [d[0]!, d[1]!, d[0]!, d[2]!, d[0]!, d[1]!];
    const ver = makeBatch([{ tokens: [t, ...drafts], context: prompt.length, blocks: [0, 1, 2], rows: drafts.map((_, at) => ({ at })), wants: true, ...params }], { returnLogits: true });
    ver.penaltyIds = Int32Array.of(t);
    ver.penaltyIndptr = Int32Array.of(0, 1);
    ver.penaltyPromptLens = Int32Array.of(0);
    ver.penaltySlots = Int32Array.of(7);
    ver.penaltySlotKeep = Int32Array.of(prompt.length);
    const out = gpu.step(ver);
    const whole = { ...ver, penaltyIds: Int32Array.from([...prompt, t]), penaltyIndptr: Int32Array.of(0, prompt.length + 1), penaltyPromptLens: Int32Array.of(prompt.length) };
    delete whole.penaltySlots;
    delete whole.penaltySlotKeep;
    const cpu = sampleLogits("cpu", whole, out.logits!, V);
    expect(Array.from(out.ids)).toEqual(Array.from(cpu.ids));
  });
});
