import { describe, expect, test } from "bun:test";
import { samplingParams, SamplingParamsError } from "../../src/engine/samplingParams";
import type { SamplingInput } from "../../src/engine/samplingParams";
import { Sequence } from "../../src/engine/sequence";
import { commitPlan } from "../../src/engine/scheduler";
import { abort, applyStep } from "../../src/engine/stepper";
import { checkStop } from "../../src/engine/stop";
import { TestEngine } from "./testEngine";

const EOS = 0;

function after(outputs: number[], opts: Partial<SamplingInput> = {}, prompt = [5, 6, 7]): Sequence {
  const s = new Sequence(0, 0, prompt, samplingParams({ maxTokens: 10, seed: 1, ...opts }));
  for (const o of outputs) s.appendOutput(o);
  return s;
}

describe("checkStop", () => {
  const cfg = { eosTokenIds: [EOS] };
  test("EOS stops unless ignore_eos", () => {
    expect(checkStop(after([3, EOS]), EOS, cfg)).toEqual({ finishReason: "stop", stopReason: null });
    expect(checkStop(after([3, EOS], { ignoreEos: true }), EOS, cfg)).toBeNull();
  });
  test("stop_token_ids stop and name the id", () => {
    expect(checkStop(after([9], { stopTokenIds: [9] }), 9, cfg)).toEqual({ finishReason: "stop", stopReason: 9 });
  });
  test("max_tokens and max model length end with length", () => {
    expect(checkStop(after([1, 1], { maxTokens: 2 }), 1, cfg)?.finishReason).toBe("length");
    expect(checkStop(after([1, 1]), 1, cfg)).toBeNull();
    expect(checkStop(after([1, 1]), 1, { eosTokenIds: [EOS], maxModelLen: 5 })?.finishReason).toBe("length");
  });
  test("nothing stops before min_tokens except max_tokens", () => {
    expect(checkStop(after([EOS], { minTokens: 2 }), EOS, cfg)).toBeNull();
    expect(checkStop(after([4], { minTokens: 2, stopTokenIds: [4] }), 4, cfg)).toBeNull();
    expect(checkStop(after([4, 4], { minTokens: 2, stopTokenIds: [4] }), 4, cfg)?.finishReason).toBe("stop");
  });
  test("the stop-string hook is asked only once min_tokens is reached", () => {
    const seen: number[] = [];
    const hook = (_s: Sequence, id: number) => (seen.push(id), id === 8 ? "END" : null);
    expect(checkStop(after([8], { minTokens: 2 }), 8, cfg, hook)).toBeNull();
    expect(checkStop(after([1, 8], { minTokens: 2 }), 8, cfg, hook)).toEqual({ finishReason: "stop", stopReason: "END" });
    expect(seen).toEqual([8]);
  });
});

describe("applyStep and abort", () => {
  test("computed tokens catch up; only the last chunk samples; finishing frees blocks", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 4, maxSeqs: 4 }, 10, 2);
    const s = e.add(6, 2);
    let r = e.step();
    expect([s.numComputedTokens, s.outputIds.length, r.events.length]).toEqual([4, 0, 0]);
    r = e.step();
    expect([s.numComputedTokens, s.outputIds.length]).toEqual([6, 1]);
    expect(r.events).toEqual([{ seq: s, row: 0, tokenId: s.outputIds[0]!, finishReason: null }]);
    r = e.step();
    expect([s.numComputedTokens, s.outputIds.length]).toEqual([7, 2]);
    expect(r.events[0]!.finishReason).toBe("length");
    expect(s.status).toBe("finished");
    expect(e.blocks.numFreeBlocks).toBe(10);
    expect(e.queues.size).toBe(0);
  });

  test("abort frees everything, waiting, running or in the middle of a pass", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 8, maxSeqs: 4 }, 20, 2);
    const waiting = e.add(30, 5);
    const running = e.add(3, 5);
    expect(abort(waiting.id, e.ctx)).toBe(waiting);
    expect(waiting.finishReason).toBe("abort");
    e.step();
    expect(running.status).toBe("running");
    const mid = e.add(3, 5);
    // Plan and commit, then abort while the "forward pass" runs: apply skips the row.
    const plan = e.plan();
    commitPlan(plan, e.queues, e.blocks);
    expect(abort(mid.id, e.ctx)).toBe(mid);
    expect(abort(running.id, e.ctx)).toBe(running);
    const rowIndptr = Int32Array.from({ length: plan.entries.length + 1 }, (_, i) => i);
    expect(applyStep(plan, { rowIndptr, ids: new Int32Array(plan.entries.length).fill(7) }, e.ctx)).toEqual([]);
    expect(mid.outputIds).toEqual([]);
    expect(e.blocks.numFreeBlocks).toBe(20);
    expect(e.queues.size).toBe(0);
    expect(abort(mid.id, e.ctx)).toBeNull();
    expect(abort(12345, e.ctx)).toBeNull();
  });
});

describe("samplingParams", () => {
  test("fills defaults and keeps a given seed", () => {
    const p = samplingParams({ maxTokens: 5, seed: 42, logitBias: { 3: -1 } });
    expect([p.temperature, p.topP, p.topK, p.minP, p.repetitionPenalty, p.seed]).toEqual([1, 1, 0, 0, 1, 42n]);
    expect(Array.from(p.logitBiasIds)).toEqual([3]);
    expect(typeof samplingParams({ maxTokens: 1 }).seed).toBe("bigint");
  });
  test("rejects out-of-range options", () => {
    const bad: Partial<SamplingInput>[] = [
      { temperature: -1 }, { topP: 0 }, { topK: 1.5 }, { minP: 2 }, { maxTokens: 0 }, { minTokens: 11 },
      { logprobs: 21 }, { repetitionPenalty: 0 }, { presencePenalty: 3 }, { logitBias: { 1: 200 } },
    ];
    for (const b of bad) expect(() => samplingParams({ maxTokens: 10, ...b }), JSON.stringify(b)).toThrow(SamplingParamsError);
  });
});
