import { describe, expect, test } from "bun:test";
import { PlanInvariantError, schedule } from "../../src/engine/scheduler";
import type { Plan, SchedulerInput, SchedulerPolicy } from "../../src/engine/scheduler";
import { PlanBuilder } from "../../src/engine/scheduler/planBuilder";
import { splitFusePolicy } from "../../src/engine/scheduler/splitfuse";
import { EOS_IDS } from "./harness";
import { referenceRun } from "./reference";
import { TestEngine, rows } from "./testEngine";

describe("splitfuse", () => {
  test("splits a long prompt, fuses short ones, fills the budget exactly", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 16, maxSeqs: 8 }, 100, 4);
    e.add(40);
    e.add(5);
    e.add(3);
    expect(rows(e.step().plan)).toEqual([[0, 16, false]]);
    expect(rows(e.step().plan)).toEqual([[0, 16, false]]);
    const fused = e.step().plan;
    expect(rows(fused)).toEqual([[0, 8, true], [1, 5, true], [2, 3, true]]);
    expect(fused.numTokens).toBe(16);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 1, true], [2, 1, true]]);
  });

  test("decodes first, then partial prompts, then new admissions", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 8, maxSeqs: 8 }, 100, 4);
    e.add(3, 10);
    expect(rows(e.step().plan)).toEqual([[0, 3, true]]);
    e.add(20);
    e.add(2);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 7, false]]);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 7, false]]);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 6, true], [2, 1, false]]);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 1, true], [2, 1, true]]);
  });

  test("the sequence cap holds running sequences back", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 64, maxSeqs: 2 }, 100, 4);
    e.add(3);
    e.add(3);
    e.add(3);
    expect(rows(e.step().plan)).toEqual([[0, 3, true], [1, 3, true]]);
    expect(e.queues.waiting.map((s) => s.id)).toEqual([2]);
  });
});

describe("prefill-first", () => {
  test("waiting prompts take priority over decodes; a prompt longer than B runs alone", () => {
    const e = new TestEngine("prefill-first", { tokenBudget: 8, maxSeqs: 8 }, 100, 4);
    e.add(3, 3);
    expect(rows(e.step().plan)).toEqual([[0, 3, true]]);
    e.add(4, 3);
    e.add(4, 3);
    e.add(5, 3);
    expect(rows(e.step().plan)).toEqual([[1, 4, true], [2, 4, true]]);
    expect(rows(e.step().plan)).toEqual([[3, 5, true]]);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 1, true], [2, 1, true], [3, 1, true]]);
    e.add(20, 2);
    const alone = e.step().plan;
    expect(rows(alone)).toEqual([[4, 20, true]]);
    expect(alone.numTokens).toBeGreaterThan(8);
  });
});

describe("orca", () => {
  test("whole prompts join the decodes; a prompt longer than B runs alone", () => {
    const e = new TestEngine("orca", { tokenBudget: 8, maxSeqs: 8 }, 100, 4);
    e.add(3, 5);
    expect(rows(e.step().plan)).toEqual([[0, 3, true]]);
    e.add(4, 5);
    e.add(4, 5);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 4, true]]);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 1, true], [2, 4, true]]);
    e.add(20, 2);
    expect(rows(e.step().plan)).toEqual([[3, 20, true]]);
    expect(rows(e.step().plan)).toEqual([[0, 1, true], [1, 1, true], [2, 1, true], [3, 1, true]]);
  });
});

describe("KV pressure", () => {
  for (const caching of [false, true])
    test(`preempts the newest running sequence; its stream continues after recomputation (prefix caching ${caching ? "on" : "off"})`, () => {
      const e = new TestEngine("splitfuse", { tokenBudget: 64, maxSeqs: 8 }, 6, 4, caching);
      const a = e.add(4, 12);
      const b = e.add(4, 12);
      const emitted = new Map<number, number[]>([[0, []], [1, []]]);
      const plans: Plan[] = [];
      while (e.queues.size > 0) {
        const { plan, events } = e.step();
        plans.push(plan);
        for (const ev of events) emitted.get(ev.seq.id)!.push(ev.tokenId);
      }
      const preempting = plans.find((p) => p.preempted.length > 0)!;
      expect(preempting.preempted).toEqual([b]);
      expect(a.numPreemptions).toBe(0);
      expect(b.numPreemptions).toBeGreaterThan(0);
      // Re-admitted over prompt + outputs so far, sampling only the next token: from scratch without
      // the cache; with it, past the full blocks it had computed (still cached once freed).
      const redo = plans.find((p) => p.admitted.includes(b) && b.numPreemptions > 0 && p !== plans[0])!;
      const row = redo.entries.find((x) => x.seq === b)!;
      if (caching) {
        expect(row.contextLen).toBeGreaterThan(0);
        expect(row.contextLen % 4).toBe(0);
      } else expect(row.contextLen).toBe(0);
      expect(row.wantsToken).toBe(true);
      for (const seq of [a, b]) {
        const ref = referenceRun(Array.from(seq.promptIds), seq.params, EOS_IDS).tokens;
        expect(emitted.get(seq.id)).toEqual(ref);
        expect(seq.outputIds).toEqual(ref);
      }
      expect(e.blocks.numFreeBlocks).toBe(6);
    });

  test("a prompt larger than the pool is rejected; a generation outgrowing it ends with length", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 64, maxSeqs: 8 }, 2, 4);
    const big = e.add(9, 4);
    const grows = e.add(6, 10);
    const { plan } = e.step();
    expect(plan.rejected.map((r) => r.seq)).toEqual([big]);
    expect(big.finishReason).toBe("rejected");
    expect(plan.rejected[0]!.message).toContain("the pool has 2");
    e.drain();
    expect(grows.finishReason).toBe("length");
    expect(grows.outputIds.length).toBe(3); // 6 + 3 tokens would need a third block
    expect(e.blocks.numFreeBlocks).toBe(2);
  });
});

describe("schedule()", () => {
  test("is pure: planning changes no sequence and no block", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 5, maxSeqs: 4 }, 5, 2);
    for (let i = 0; i < 5; i++) e.add(3 + i, 6);
    for (let k = 0; k < 12 && e.queues.size > 0; k++) {
      const snap = () => JSON.stringify([
        [...e.queues.running, ...e.queues.waiting].map((s) => [s.id, s.status, s.numComputedTokens, s.outputIds.length]),
        e.blocks.numFreeBlocks,
      ]);
      const before = snap();
      e.plan();
      e.plan();
      expect(snap()).toBe(before);
      e.step();
    }
  });

  test("throws on a plan that breaks an invariant", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 4, maxSeqs: 2 }, 10, 4);
    e.add(3, 5);
    e.add(3, 5);
    e.step();
    const input: SchedulerInput = { running: e.queues.running, waiting: e.queues.waiting, blocks: e.blocks };
    const config = { tokenBudget: 4, maxSeqs: 2 };
    const bad = (name: string, mutate: (p: Plan) => Plan): SchedulerPolicy => ({
      ...splitFusePolicy,
      plan: (i, c) => mutate(splitFusePolicy.plan(i, c)),
    });
    const cases: [string, (p: Plan) => Plan][] = [
      ["duplicate", (p) => ({ ...p, entries: [...p.entries, p.entries[0]!], numTokens: p.numTokens + 1 })],
      ["over budget", (p) => ({ ...p, entries: p.entries.map((x) => ({ ...x, numTokens: 3 })), numTokens: 6 })],
      ["no KV", (p) => ({ ...p, entries: p.entries.map((x) => ({ ...x, contextLen: x.contextLen + 40 })) })],
      ["wantsToken", (p) => ({ ...p, entries: p.entries.map((x) => ({ ...x, wantsToken: false })) })],
      ["skipped decode", (p) => ({ ...p, entries: p.entries.slice(1), numTokens: p.numTokens - 1 })],
      ["free count", (p) => ({ ...p, numFreeBlocksAfter: p.numFreeBlocksAfter + 1 })],
    ];
    expect(() => schedule(splitFusePolicy, input, config)).not.toThrow();
    for (const [name, mutate] of cases) {
      expect(() => schedule(bad(name, mutate), input, config), name).toThrow(PlanInvariantError);
    }
  });

  test("PlanBuilder preempts the newest unscheduled sequence first, down to the asker itself", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 64, maxSeqs: 8 }, 8, 2);
    const [s0, s1, s2] = [e.add(2, 9), e.add(2, 9), e.add(2, 9)];
    e.step(); // each holds 1 block; 5 free
    const b = new PlanBuilder({ running: e.queues.running, waiting: e.queues.waiting, blocks: e.blocks }, { tokenBudget: 64, maxSeqs: 8 }, "splitfuse");
    expect(b.scheduleRunning(s2!, 1)).toBe(true); // takes a block: 4 free
    // s0 asks for 6 more blocks: s2 is scheduled (untouchable), s1 goes, then s0 itself.
    expect(b.scheduleRunning(s0!, 11)).toBe(false);
    expect(b.preempted).toEqual([s1!, s0!]);
    expect(b.entries.map((x) => x.seq)).toEqual([s2!]);
    expect(b.free).toBe(4 + 1 + 1);
  });
});
