import { describe, expect, test } from "bun:test";
import { KvCacheManager } from "../../src/engine/kvCache/kvCacheManager";
import { StepBatchBuilder } from "../../src/engine/batch";
import { PenaltySlots } from "../../src/engine/penaltySlots";
import type { Plan, PlanEntry } from "../../src/engine/scheduler";
import { samplingParams } from "../../src/engine/samplingParams";
import type { SamplingInput } from "../../src/engine/samplingParams";
import { Sequence } from "../../src/engine/sequence";

const EOS = 2;

function seq(id: number, prompt: number[], outputs: number[], opts: Partial<SamplingInput> = {}): Sequence {
  const s = new Sequence(id, id, prompt, samplingParams({ maxTokens: 100, seed: 1000 + id, ...opts }));
  for (const o of outputs) s.appendOutput(o);
  return s;
}

function plan(rows: [Sequence, number, number][]): Plan {
  const entries: PlanEntry[] = rows.map(([s, c, n]) => ({ seq: s, contextLen: c, numTokens: n, wantsToken: c + n === s.numTokens, newBlocks: 0 }));
  return { policy: "splitfuse", entries, numTokens: rows.reduce((t, r) => t + r[2], 0), preempted: [], admitted: [], rejected: [], numFreeBlocksAfter: 0 };
}

describe("StepBatchBuilder", () => {
  test("lays out a prompt chunk and a decode as fg_batch expects", () => {
    const blocks = new KvCacheManager(16, 4);
    const a = seq(0, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19], [], { temperature: 0.5, topP: 0.9, topK: 40, minP: 0.05 });
    const b = seq(1, [20, 21, 22], [30, 31]);
    blocks.allocate(0, 10); // 3 blocks; the chunk covers 7 tokens = 2 blocks
    blocks.allocate(1, 5);
    const batch = new StepBatchBuilder([EOS]).build(plan([[a, 2, 5], [b, 4, 1]]), blocks);
    expect(Array.from(batch.tokenIds)).toEqual([12, 13, 14, 15, 16, 31]);
    expect(Array.from(batch.positions)).toEqual([2, 3, 4, 5, 6, 4]);
    expect(Array.from(batch.cuSeqlens)).toEqual([0, 5, 6]);
    expect(Array.from(batch.contextLens)).toEqual([2, 4]);
    const ta = Array.from(blocks.table(0)!.ids.subarray(0, 2));
    const tb = Array.from(blocks.table(1)!.ids.subarray(0, 2));
    expect(Array.from(batch.blockIndptr)).toEqual([0, 2, 4]);
    expect(Array.from(batch.blockIndices)).toEqual([...ta, ...tb]);
    // one sampled row, at b's decode token (index 5); a's chunk does not reach its last token
    expect(Array.from(batch.rowIndptr)).toEqual([0, 0, 1]);
    expect(Array.from(batch.rowTokens)).toEqual([5]);
    expect(batch.rowTargets).toBeUndefined();
    expect(batch.temperature[0]).toBeCloseTo(0.5);
    expect(batch.topP[0]).toBeCloseTo(0.9);
    expect(Array.from(batch.topK)).toEqual([40, 0]);
    expect(batch.minP[0]).toBeCloseTo(0.05);
    expect(Array.from(batch.seed)).toEqual([1000n, 1001n]);
    expect(batch.penaltyIndptr).toBeUndefined();
    expect(batch.logitBiasIndptr).toBeUndefined();
    expect(batch.numLogprobs).toBe(0);
    expect(batch.returnLogits).toBe(false);
  });

  test("sample rows: prompt logprobs are scored rows, the last token a sampled row", () => {
    const blocks = new KvCacheManager(16, 4);
    const a = seq(0, [10, 11, 12, 13, 14, 15], [], { promptLogprobs: 2, logprobs: 1 }); // chunk 2..5
    const b = seq(1, [20, 21, 22], [], { promptLogprobs: 0 }); // whole prompt: scored 0, 1; sampled 2
    const c = seq(2, [30, 31], [32], {}); // decode, no prompt logprobs
    const d = seq(3, [40, 41, 42], [43], { promptLogprobs: 1 }); // recomputed after preemption
    for (const s of [a, b, c, d]) blocks.allocate(s.id, s.numTokens);
    const batch = new StepBatchBuilder().build(plan([[a, 2, 3], [b, 0, 3], [c, 2, 1], [d, 0, 4]]), blocks);
    // tokens: a 0..2 (positions 2..4), b 3..5, c 6, d 7..10
    expect(Array.from(batch.rowIndptr)).toEqual([0, 3, 6, 7, 10]);
    expect(Array.from(batch.rowTokens)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 10]);
    expect(Array.from(batch.rowTargets!)).toEqual([13, 14, 15, 21, 22, -1, -1, 41, 42, -1]);
    expect(batch.numLogprobs).toBe(2);
  });

  test("penalty CSR: outputs for presence/frequency, prompt + outputs with repetition", () => {
    const blocks = new KvCacheManager(16, 4);
    const a = seq(0, [5, 6], [7, 8], { presencePenalty: 0.5 });
    const b = seq(1, [9], [10], { repetitionPenalty: 1.2 });
    const c = seq(2, [11, 12, 13], [], {}); // no penalties
    const d = seq(3, [14, 15, 16, 17], [], { frequencyPenalty: 1 }); // chunk: samples nothing
    for (const s of [a, b, c, d]) blocks.allocate(s.id, s.numTokens);
    const batch = new StepBatchBuilder().build(plan([[a, 3, 1], [b, 1, 1], [c, 0, 3], [d, 0, 2]]), blocks);
    expect(Array.from(batch.penaltyIndptr!)).toEqual([0, 2, 4, 4, 4]);
    expect(Array.from(batch.penaltyIds!)).toEqual([7, 8, 9, 10]);
    expect(Array.from(batch.presencePenalty!)).toEqual([0.5, 0, 0, 0]);
    expect(Array.from(batch.frequencyPenalty!)).toEqual([0, 0, 0, 1]);
    expect(batch.repetitionPenalty![1]).toBeCloseTo(1.2);
    expect(batch.repetitionPenalty![0]).toBe(1);
  });

  test("logit bias CSR: the request's bias plus -inf on EOS and stop ids below min_tokens", () => {
    const blocks = new KvCacheManager(16, 4);
    const a = seq(0, [5], [], { logitBias: { 7: 5, 9: -100 } });
    const b = seq(1, [5], [6], { minTokens: 3, stopTokenIds: [40] });
    const c = seq(2, [5], [6], { minTokens: 3, stopTokenIds: [41], ignoreEos: true, logprobs: 4, returnLogits: true });
    const d = seq(3, [5], [6, 7, 8], { minTokens: 3, stopTokenIds: [42] }); // reached min_tokens
    for (const s of [a, b, c, d]) blocks.allocate(s.id, s.numTokens);
    const batch = new StepBatchBuilder([EOS]).build(plan([[a, 0, 1], [b, 1, 1], [c, 1, 1], [d, 3, 1]]), blocks);
    expect(Array.from(batch.logitBiasIndptr!)).toEqual([0, 2, 4, 5, 5]);
    expect(Array.from(batch.logitBiasIds!)).toEqual([7, 9, EOS, 40, 41]);
    expect(Array.from(batch.logitBiasValues!)).toEqual([5, -100, -Infinity, -Infinity, -Infinity]);
    expect(batch.numLogprobs).toBe(4);
    expect(batch.returnLogits).toBe(true);
  });

  test("reuses its buffers and grows them when a pass outgrows them", () => {
    const blocks = new KvCacheManager(2000, 1);
    const builder = new StepBatchBuilder();
    const a = seq(0, [1, 2, 3], []);
    blocks.allocate(0, 3);
    const b1 = builder.build(plan([[a, 0, 3]]), blocks);
    const b2 = builder.build(plan([[a, 0, 3]]), blocks);
    expect(b2.tokenIds.buffer).toBe(b1.tokenIds.buffer);
    const big = Array.from({ length: 300 }, (_, i) => seq(i + 1, Array.from({ length: 5 }, (_, j) => i + j), []));
    for (const s of big) blocks.allocate(s.id, 5);
    const b3 = builder.build(plan(big.map((s) => [s, 0, 5])), blocks);
    expect(b3.tokenIds.length).toBe(1500);
    expect(b3.contextLens.length).toBe(300);
    expect(b3.blockIndices.length).toBe(1500);
    expect(b3.tokenIds[1499]).toBe(299 + 4);
    expect(b3.cuSeqlens[300]).toBe(1500);
  });

  test("penalty slots: a sequence's list goes whole once, then only its new ids", () => {
    const blocks = new KvCacheManager(64, 4);
    const slots = new PenaltySlots();
    const builder = new StepBatchBuilder([EOS], null, slots);
    const a = seq(0, [10, 11, 12], [30], { repetitionPenalty: 1.2 }); // prompt ids count
    const b = seq(1, [20, 21], [40, 41], { presencePenalty: 0.5 }); // outputs only
    const c = seq(2, [50], [60]); // no penalty: no slot
    for (const s of [a, b, c]) blocks.allocate(s.id, s.numTokens + 4);
    let batch = builder.build(plan([[a, 3, 1], [b, 3, 1], [c, 1, 1]]), blocks);
    expect(Array.from(batch.penaltySlots!)).toEqual([0, 1, -1]);
    expect(Array.from(batch.penaltySlotKeep!)).toEqual([0, 0, 0]);
    expect(Array.from(batch.penaltyIndptr!)).toEqual([0, 4, 6, 6]);
    expect(Array.from(batch.penaltyIds!)).toEqual([10, 11, 12, 30, 40, 41]);
    expect(Array.from(batch.penaltyPromptLens!)).toEqual([3, 0, 0]);
    a.appendOutput(31);
    b.appendOutput(42);
    batch = builder.build(plan([[a, 4, 1], [b, 4, 1]]), blocks);
    expect(Array.from(batch.penaltySlots!)).toEqual([0, 1]);
    expect(Array.from(batch.penaltySlotKeep!)).toEqual([4, 2]);
    expect(Array.from(batch.penaltyIds!)).toEqual([31, 42]);
    expect(Array.from(batch.penaltyPromptLens!)).toEqual([0, 0]);
    // b finishes; a newcomer takes its slot and starts it over (keep 0)
    slots.release(b.id);
    const d = seq(3, [70, 71], [], { frequencyPenalty: 0.3, repetitionPenalty: 1.1 });
    blocks.allocate(d.id, 4);
    a.appendOutput(32);
    batch = builder.build(plan([[d, 0, 2], [a, 5, 1]]), blocks);
    expect(Array.from(batch.penaltySlots!)).toEqual([1, 0]);
    expect(Array.from(batch.penaltySlotKeep!)).toEqual([0, 5]);
    expect(Array.from(batch.penaltyIds!)).toEqual([70, 71, 32]);
    expect(Array.from(batch.penaltyPromptLens!)).toEqual([2, 0]);
    expect(slots.size).toBe(2);
  });

  test("refuses a row whose table does not cover its tokens", () => {
    const blocks = new KvCacheManager(4, 4);
    const a = seq(0, [1, 2, 3, 4, 5], []);
    blocks.allocate(0, 4);
    expect(() => new StepBatchBuilder().build(plan([[a, 0, 5]]), blocks)).toThrow(/needs 2/);
  });
});
