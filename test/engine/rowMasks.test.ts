// RowMaskBuilder: which sampled rows get which mask (scored rows never), shared slots for one
// array, intersections of several sources, and no masks at all for an unconstrained pass.
import { describe, expect, test } from "bun:test";
import { AllowedTokenMasks, allowedTokenIdsProblem, allowedTokenMask } from "../../src/engine/allowedTokens";
import { StepBatchBuilder } from "../../src/engine/batch";
import { KvCacheManager } from "../../src/engine/kvCache/kvCacheManager";
import type { RowMaskSource } from "../../src/engine/rowMasks";
import { RowMaskBuilder } from "../../src/engine/rowMasks";
import type { Plan, PlanEntry } from "../../src/engine/scheduler";
import type { SamplingInput } from "../../src/engine/samplingParams";
import { samplingParams } from "../../src/engine/samplingParams";
import { Sequence } from "../../src/engine/sequence";

const VOCAB = 70; // 3 words, the last partly past the vocabulary

function seq(id: number, prompt: number[], opts: Partial<SamplingInput> = {}): Sequence {
  return new Sequence(id, id, prompt, samplingParams({ maxTokens: 100, seed: id, ...opts }));
}

function plan(seqs: Sequence[]): Plan {
  const entries: PlanEntry[] = seqs.map((s) => ({ seq: s, contextLen: 0, numTokens: s.numTokens, wantsToken: true, newBlocks: 0 }));
  return { policy: "splitfuse", entries, numTokens: seqs.reduce((t, s) => t + s.numTokens, 0), preempted: [], admitted: [], rejected: [], numFreeBlocksAfter: 0 };
}

function build(seqs: Sequence[], sources: RowMaskSource[]) {
  const blocks = new KvCacheManager(32, 4);
  for (const s of seqs) blocks.allocate(s.id, s.numTokens);
  return new StepBatchBuilder([], new RowMaskBuilder(VOCAB, sources)).build(plan(seqs), blocks);
}

/** The ids mask `slot` of a batch allows. */
function allowedIn(masks: Uint32Array, slot: number): number[] {
  const ids: number[] = [];
  for (let id = 0; id < VOCAB; id++) if (masks[slot * 3 + (id >>> 5)]! & (1 << (id & 31))) ids.push(id);
  return ids;
}

describe("allowed_token_ids masks", () => {
  test("a mask allows exactly its ids; ids past the vocabulary are left out", () => {
    const m = allowedTokenMask([0, 31, 32, 69, 70, 95], VOCAB);
    expect(m.length).toBe(3);
    expect(allowedIn(m, 0)).toEqual([0, 31, 32, 69]);
    expect(allowedTokenIdsProblem([], VOCAB)).toContain("empty");
    expect(allowedTokenIdsProblem([3, 70], VOCAB)).toContain("70");
    expect(allowedTokenIdsProblem([3, 69], VOCAB)).toBeNull();
  });

  test("sampled rows of constrained sequences get masks; samples sharing a list share one slot", () => {
    const ids = [5, 6, 40];
    const a = seq(0, [1, 2], { allowedTokenIds: ids });
    const b = seq(1, [3]);
    const c = seq(2, [4, 5, 6], { allowedTokenIds: ids, seed: 9 });
    const d = seq(3, [7], { allowedTokenIds: [68] });
    const batch = build([a, b, c, d], [new AllowedTokenMasks(VOCAB)]);
    expect(Array.from(batch.rowMasks!)).toEqual([0, -1, 0, 1]);
    expect(batch.masks!.length).toBe(2 * 3);
    expect(allowedIn(batch.masks!, 0)).toEqual(ids);
    expect(allowedIn(batch.masks!, 1)).toEqual([68]);
  });

  test("an unconstrained pass carries no masks", () => {
    const batch = build([seq(0, [1, 2]), seq(1, [3])], [new AllowedTokenMasks(VOCAB)]);
    expect(batch.rowMasks).toBeUndefined();
    expect(batch.masks).toBeUndefined();
  });

  test("scored rows (prompt logprobs) get none; several sources intersect", () => {
    const evenOnly: RowMaskSource = { maskFor: () => allowedTokenMask([4, 6, 8, 40], VOCAB) };
    const a = seq(0, [1, 2, 3], { allowedTokenIds: [5, 6, 40], promptLogprobs: 0 });
    const batch = build([a], [new AllowedTokenMasks(VOCAB), evenOnly]);
    expect(Array.from(batch.rowTargets!)).toEqual([2, 3, -1]);
    expect(Array.from(batch.rowMasks!)).toEqual([-1, -1, 0]);
    expect(allowedIn(batch.masks!, 0)).toEqual([6, 40]);
  });

  test("a source sees the sequence and how many of its sampled rows come before", () => {
    const seen: [number, number][] = [];
    const spy: RowMaskSource = { maskFor: (s, ahead) => (seen.push([s.id, ahead]), null) };
    build([seq(0, [1]), seq(1, [2, 3])], [spy]);
    expect(seen).toEqual([[0, 0], [1, 0]]);
  });

  test("an empty list is refused by samplingParams", () => {
    expect(() => samplingParams({ maxTokens: 1, allowedTokenIds: [] })).toThrow(/allowed_token_ids/);
  });
});
