// Device sampling (cuda/sampling.cu) against cpu/sampling.cpp on the same logits: greedy and
// seeded draws pick the same ids (the same (seed, position) stream, the same candidate order),
// through temperature, top-k, top-p, min-p, penalties and logit bias; logprobs of the raw
// logits agree to fp32 rounding.
import { describe, expect, test } from "bun:test";
import { sampleLogits } from "../../src/native";
import { makeBatch, type SeqChunk } from "../native/helpers";
import { hasGpu } from "./gpuHelpers";

function logitsFor(rows: number, vocab: number, spread: number): Float32Array {
  const a = new Float32Array(rows * vocab);
  for (let i = 0; i < a.length; i++) a[i] = (Math.random() * 2 - 1) * spread + (Math.random() < 0.001 ? 5 : 0);
  return a;
}

const PARAMS: Partial<SeqChunk>[] = [
  { temperature: 0 },
  { temperature: 0, repetition: 1.3, presence: 0.5, frequency: 0.2 },
  { temperature: 1 },
  { temperature: 0.7, topK: 40 },
  { temperature: 0.9, topP: 0.9 },
  { temperature: 1.2, topK: 100, topP: 0.8 },
  { temperature: 1, minP: 0.05 },
  { temperature: 0.8, topP: 0.95, minP: 0.02 },
  { temperature: 1, topK: 1 },
  { temperature: 0.6, topK: 5, repetition: 1.2, frequency: 0.3 },
];

function batchFor(rows: number, vocab: number, round: number) {
  const chunks: SeqChunk[] = [];
  for (let s = 0; s < rows; s++) {
    const p = PARAMS[s % PARAMS.length]!;
    const pen = Array.from({ length: 1 + (s % 7) * 9 }, () => Math.floor(Math.random() * vocab));
    chunks.push({
      tokens: [1], context: 10 + s + round, blocks: [s], wants: s % 11 !== 10,
      seed: BigInt(1000 + s * 7919 + round), penaltyIds: pen,
      bias: s % 3 === 0 ? [[Math.floor(Math.random() * vocab), 3.5], [7, -100]] : [], ...p,
    });
  }
  const batch = makeBatch(chunks, { numLogprobs: 5 });
  // the first ids of some rows' penalty lists are prompt ids (repetition only)
  batch.penaltyPromptLens = Int32Array.from({ length: rows }, (_, s) => (s % 4) * 5);
  return batch;
}

// Small hand-made rows whose answer is known: each penalty alone moves the greedy pick.
const CRAFTED: [string, Partial<SeqChunk>, number[]][] = [
  ["no penalty", {}, []],
  ["presence", { presence: 1 }, [5]],
  ["repetition", { repetition: 2 }, [5]],
  ["frequency x3", { frequency: 0.05 }, [5, 5, 5]],
  ["bias", { bias: [[5, -1]] }, []],
  ["presence on a prompt-only id: no effect", { presence: 1 }, [5]],
  ["repetition on a prompt-only id", { repetition: 2 }, [5]],
];
const CRAFTED_PROMPT_LENS = [0, 0, 0, 0, 0, 1, 1];

describe.skipIf(!hasGpu)("cuda sampling vs cpu", () => {
  test("crafted penalty rows pick the runner-up", () => {
    const V = 64;
    const chunks: SeqChunk[] = CRAFTED.map(([, p, pen], s) => ({ tokens: [1], context: 3, blocks: [s], wants: true, temperature: 0, penaltyIds: pen, ...p }));
    const batch = makeBatch(chunks, { numLogprobs: 2 });
    batch.penaltyPromptLens = Int32Array.from(CRAFTED_PROMPT_LENS);
    const logits = new Float32Array(CRAFTED.length * V);
    for (let s = 0; s < CRAFTED.length; s++) {
      logits[s * V + 5] = 2;
      logits[s * V + 6] = 1.9;
    }
    const cpu = sampleLogits("cpu", batch, logits, V), gpu = sampleLogits("cuda", batch, logits, V);
    CRAFTED.forEach(([name], s) => console.log(`crafted ${name}: cpu ${cpu.ids[s]} gpu ${gpu.ids[s]}`));
    expect(Array.from(cpu.ids)).toEqual([5, 6, 6, 6, 6, 5, 6]);
    expect(Array.from(gpu.ids)).toEqual([5, 6, 6, 6, 6, 5, 6]);
  });

  for (const [vocab, spread] of [[1000, 3], [32000, 4], [151936, 2]] as const) {
    test(`vocab ${vocab}: same ids, logprobs within 1e-4`, () => {
      let draws = 0, same = 0;
      for (let round = 0; round < 6; round++) {
        const batch = batchFor(30, vocab, round);  // every 11th sequence has no sample row
        const rows = batch.rowTokens.length;
        const logits = logitsFor(rows, vocab, spread);
        const cpu = sampleLogits("cpu", batch, logits, vocab);
        const gpu = sampleLogits("cuda", batch, logits, vocab);
        for (let r = 0; r < rows; r++) {
          const s = batch.rowIndptr.findIndex((x) => x > r) - 1;  // the row's sequence
          draws++;
          if (gpu.ids[r] === cpu.ids[r]) same++;
          else {
            const c = cpu.ids[r]!, g = gpu.ids[r]!;
            const pen = Array.from(batch.penaltyIds!.subarray(batch.penaltyIndptr![s], batch.penaltyIndptr![s + 1]));
            const count = (id: number) => pen.filter((x) => x === id).length;
            console.log(`vocab ${vocab} round ${round} row ${r} of sequence ${s} (${JSON.stringify(PARAMS[s % PARAMS.length])}): cpu ${c} (logit ${logits[r * vocab + c]}, pen x${count(c)}) gpu ${g} (logit ${logits[r * vocab + g]}, pen x${count(g)})`);
            continue;
          }
          expect(Math.abs(gpu.logprobs[r]! - cpu.logprobs[r]!)).toBeLessThan(1e-4);
          for (let k = 0; k < 5; k++) {
            expect(gpu.topIds![r * 5 + k]).toBe(cpu.topIds![r * 5 + k]!);
            expect(Math.abs(gpu.topLogprobs![r * 5 + k]! - cpu.topLogprobs![r * 5 + k]!)).toBeLessThan(1e-4);
          }
        }
      }
      console.log(`sampling vocab ${vocab}: ${same}/${draws} draws identical`);
      expect(same).toBe(draws);
    });
  }
});
