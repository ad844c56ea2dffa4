// bad_words (badWords.ts): which ids a word bans after an output (and after the drafts before a
// verification row), and how a batch carries the bans: the whole list as -inf bias without a
// draft; with one, the one-token words in the bias and each row's other bans as its own mask.
import { describe, expect, test } from "bun:test";
import { BadWordMasks, alwaysBannedIds, bannedBadWordIds } from "../../src/engine/badWords";
import { StepBatchBuilder } from "../../src/engine/batch";
import { KvCacheManager } from "../../src/engine/kvCache/kvCacheManager";
import { RowMaskBuilder } from "../../src/engine/rowMasks";
import type { Plan, PlanEntry } from "../../src/engine/scheduler";
import { samplingParams } from "../../src/engine/samplingParams";
import { Sequence } from "../../src/engine/sequence";
import type { StepBatch } from "../../src/engine/stepBatch";

const VOCAB = 70;
const WORDS = [[1, 2, 3], [2, 4], [9], [5, 5]];

describe("bannedBadWordIds", () => {
  test("a word's last id is banned when the output ends with the rest; one-token words always", () => {
    expect(bannedBadWordIds(WORDS, [])).toEqual([9]);
    expect(bannedBadWordIds(WORDS, [7, 1, 2])).toEqual([3, 4, 9]);
    expect(bannedBadWordIds(WORDS, [2])).toEqual([4, 9]);
    expect(bannedBadWordIds(WORDS, [5])).toEqual([9, 5]);
    expect(alwaysBannedIds(WORDS)).toEqual([9]);
  });

  test("after the first `ahead` draft tokens, and only words of minLength tokens or more", () => {
    const draft = Int32Array.of(1, 2, 8);
    expect(bannedBadWordIds(WORDS, [7], draft, 0, 2)).toEqual([]);
    expect(bannedBadWordIds(WORDS, [7], draft, 1, 2)).toEqual([]);
    expect(bannedBadWordIds(WORDS, [7], draft, 2, 2)).toEqual([3, 4]); // output 7, then 1, 2
    expect(bannedBadWordIds(WORDS, [7], draft, 3, 2)).toEqual([]);
    expect(bannedBadWordIds(WORDS, [1], Int32Array.of(2), 1)).toEqual([3, 4, 9]); // the word spans output and draft
  });
});

/** A running decode of `prompt` with `outputs` generated, verifying `draft` in the next pass. */
function drafted(id: number, prompt: number[], outputs: number[], draft: number[] | null, badWords = WORDS) {
  const seq = new Sequence(id, id, prompt, samplingParams({ maxTokens: 100, seed: id, badWords }));
  for (const t of outputs) seq.appendOutput(t);
  seq.numComputedTokens = seq.numTokens - 1;
  const d = draft === null ? undefined : Int32Array.from(draft);
  const entry: PlanEntry = { seq, contextLen: seq.numTokens - 1, numTokens: 1 + (d?.length ?? 0), wantsToken: true, newBlocks: 0, draft: d };
  return entry;
}

function build(entries: PlanEntry[], masks: boolean): StepBatch {
  const blocks = new KvCacheManager(64, 4);
  for (const e of entries) blocks.allocate(e.seq.id, e.contextLen + e.numTokens);
  const plan: Plan = { policy: "splitfuse", entries, numTokens: entries.reduce((t, e) => t + e.numTokens, 0), preempted: [], admitted: [], rejected: [], numFreeBlocksAfter: 0 };
  return new StepBatchBuilder([], masks ? new RowMaskBuilder(VOCAB, [new BadWordMasks(VOCAB)]) : null).build(plan, blocks);
}

/** The ids a row's mask bans (none: -1). */
function bannedBy(b: StepBatch, row: number): number[] | null {
  const m = b.rowMasks?.[row] ?? -1;
  if (m < 0) return null;
  const out: number[] = [];
  for (let id = 0; id < VOCAB; id++) if (!(b.masks![m * 3 + (id >>> 5)]! & (1 << (id & 31)))) out.push(id);
  return out;
}

const biasOf = (b: StepBatch, s: number) => Array.from(b.logitBiasIds!.subarray(b.logitBiasIndptr![s]!, b.logitBiasIndptr![s + 1]!));

describe("bad_words in a batch", () => {
  test("without a draft: every ban in the sequence's bias, no masks", () => {
    const b = build([drafted(0, [40], [1, 2], null)], true);
    expect(biasOf(b, 0)).toEqual([3, 4, 9]);
    expect(b.rowMasks).toBeUndefined();
  });

  test("with a draft: one-token words in the bias, each row's other bans in its mask", () => {
    // output [1], draft [2, 4, 5]: row 0 after [1], row 1 after [1, 2], row 2 after [.., 4], row 3 after [.., 5]
    const a = drafted(0, [40], [1], [2, 4, 5]);
    // a second sequence whose row 1 bans what a's row 1 bans: one shared mask slot
    const c = drafted(1, [41], [30, 1], [2, 6]);
    const b = build([a, c], true);
    expect(biasOf(b, 0)).toEqual([9]);
    expect(biasOf(b, 1)).toEqual([9]);
    expect([0, 1, 2, 3].map((r) => bannedBy(b, r))).toEqual([null, [3, 4], null, [5]]);
    expect([4, 5, 6].map((r) => bannedBy(b, r))).toEqual([null, [3, 4], null]);
    expect(b.rowMasks![1]).toBe(b.rowMasks![5]!);
  });

  test("a drafted sequence with words of several tokens needs the mask builder", () => {
    expect(() => build([drafted(0, [40], [1], [2])], false)).toThrow(/per-row bad_words masks/);
    // one-token words alone are alike for every row: the bias is enough
    const b = build([drafted(0, [40], [9], [2], [[9]])], false);
    expect(biasOf(b, 0)).toEqual([9]);
  });
});
