// Fair share between requests (PlanBuilder.shareFairly + the scheduling order of runsBefore):
// one request's samples give way to other requests' earlier samples, for every policy.
// The block counts here assume unshared blocks, so the prefix cache is off (the conformance
// suite covers fair share with it on).
import { describe, expect, test } from "bun:test";
import { POLICY_NAMES, PlanInvariantError, schedule } from "../../src/engine/scheduler";
import type { Plan, SchedulerPolicy } from "../../src/engine/scheduler";
import { splitFusePolicy } from "../../src/engine/scheduler/splitfuse";
import { MAX_SAMPLE_OVERTAKES, MAX_SAMPLE_PREEMPTIONS } from "../../src/engine/sequence";
import { EOS_IDS } from "./harness";
import { referenceRun } from "./reference";
import { TestEngine, rows } from "./testEngine";

const ids = (seqs: readonly { id: number }[]) => seqs.map((s) => s.id);

describe("fair share", () => {
  for (const policy of POLICY_NAMES) {
    test(`${policy}: a request's later samples give their places to another request's first sample`, () => {
      const e = new TestEngine(policy, { tokenBudget: 32, maxSeqs: 4 }, 200, 4, false);
      const hog = e.addSamples(6, 3, 100);
      e.step();
      e.step();
      expect(ids(e.queues.running)).toEqual(ids(hog.slice(0, 4)));
      const small = e.add(3, 2);
      const { plan } = e.step();
      expect(plan.preempted).toEqual([hog[3]!]); // the last sample of the request holding the most
      expect(plan.admitted).toEqual([small]);
      expect(plan.entries.find((x) => x.seq === small)?.wantsToken).toBe(true); // first token now
      e.step();
      expect(small.finishReason).toBe("length");
      expect(hog[3]!.numPreemptions).toBe(1);
      // The preempted sample comes back once a place frees up and continues its stream.
      e.drain();
      for (const seq of hog) expect(seq.outputIds).toEqual(referenceRun(Array.from(seq.promptIds), seq.params, EOS_IDS).tokens);
      expect(e.blocks.numFreeBlocks).toBe(200);
    });
  }

  test("two requests of n = 4 take turns: two places each, first samples first", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 64, maxSeqs: 4 }, 200, 4, false);
    const a = e.addSamples(4, 3, 50);
    e.step();
    const b = e.addSamples(4, 3, 50);
    const { plan } = e.step();
    expect(ids(plan.preempted)).toEqual(ids([a[3]!, a[2]!]));
    expect(ids(plan.admitted)).toEqual(ids([b[0]!, b[1]!]));
    expect(ids(e.queues.running)).toEqual(ids([a[0]!, b[0]!, a[1]!, b[1]!]));
    expect(ids(e.queues.waiting)).toEqual(ids([a[2]!, b[2]!, a[3]!, b[3]!]));
    // Equal sample indexes never evict each other: the places stay as they are.
    for (let i = 0; i < 10; i++) expect(e.step().plan.preempted).toEqual([]);
  });

  test("a request held back by the pool gets room from another's later samples", () => {
    // 12 blocks of 4: the hog's 3 samples hold 3 blocks each; the new prompt needs 3 + 1 reserve.
    const e = new TestEngine("splitfuse", { tokenBudget: 64, maxSeqs: 8 }, 12, 4, false);
    const hog = e.addSamples(3, 9, 30);
    e.step();
    expect(e.blocks.numFreeBlocks).toBe(3);
    const small = e.add(9, 2);
    const { plan } = e.step();
    expect(plan.preempted).toEqual([hog[2]!]);
    expect(plan.admitted).toEqual([small]);
    e.drain();
    expect(e.blocks.numFreeBlocks).toBe(12);
  });

  test("with n = 1 everywhere nothing is preempted for fair share: FCFS as before", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 64, maxSeqs: 2 }, 200, 4, false);
    for (let i = 0; i < 5; i++) e.add(3, 6);
    const plans = e.drain();
    expect(plans.every((p) => p.preempted.length === 0)).toBe(true);
    expect(plans.flatMap((p) => ids(p.admitted))).toEqual([0, 1, 2, 3, 4]);
  });

  test("another request's first sample goes before a later sample's prompt chunks", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 8, maxSeqs: 4 }, 200, 4, false);
    const [a0, a1] = e.addSamples(2, 30, 10);
    for (let i = 0; i < 4; i++) e.step(); // a0 prefilled in 8 + 8 + 8 + 6; a1 started with 2
    expect(a1!.numComputedTokens).toBe(2);
    const late = e.add(3, 2);
    // Decodes first, then in scheduling order: late (sample 0) before a1's next chunk (sample 1).
    expect(rows(e.step().plan)).toEqual([[a0!.id, 1, true], [late.id, 3, true], [a1!.id, 4, false]]);
  });

  test("assertPlan refuses a plan that leaves a first sample behind later samples in a full engine", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 32, maxSeqs: 2 }, 100, 4, false);
    e.addSamples(3, 3, 20);
    e.step();
    e.add(3, 2);
    const input = { running: e.queues.running, waiting: e.queues.waiting, blocks: e.blocks };
    const config = { tokenBudget: 32, maxSeqs: 2 };
    // Decodes only, as a policy that knew nothing of fair share would plan.
    const unfair: SchedulerPolicy = {
      ...splitFusePolicy,
      plan: (i): Plan => ({
        policy: "splitfuse", preempted: [], admitted: [], rejected: [], numFreeBlocksAfter: i.blocks.numFreeBlocks,
        entries: i.running.map((seq) => ({ seq, contextLen: seq.numComputedTokens, numTokens: 1, wantsToken: true, newBlocks: 0 })),
        numTokens: i.running.length,
      }),
    };
    expect(() => schedule(splitFusePolicy, input, config)).not.toThrow();
    expect(() => schedule(unfair, input, config)).toThrow(PlanInvariantError);
    expect(() => schedule(unfair, input, config)).toThrow(/holds the place of waiting/);
  });

  test("a later sample is preempted for fair share at most MAX_SAMPLE_PREEMPTIONS times", () => {
    const e = new TestEngine("splitfuse", { tokenBudget: 64, maxSeqs: 4 }, 400, 4, false);
    const hog = e.addSamples(5, 3, 200);
    e.step();
    for (let i = 0; i <= MAX_SAMPLE_PREEMPTIONS; i++) {
      const small = e.add(3, 2);
      while (!small.isFinished) e.step();
      e.step(); // the preempted sample takes its place back
      expect(e.queues.running.length).toBe(4);
    }
    // The last running sample takes every eviction until it ranks as a first sample; then earlier ones do.
    expect(hog[3]!.numPreemptions).toBe(MAX_SAMPLE_PREEMPTIONS);
    expect(hog[3]!.scheduledSampleIndex).toBe(0);
    expect(hog[2]!.numPreemptions).toBeGreaterThan(0);
    for (const seq of hog) expect(seq.numPreemptions).toBeLessThanOrEqual(MAX_SAMPLE_PREEMPTIONS);
    e.drain();
    for (const seq of hog) expect(seq.outputIds).toEqual(referenceRun(Array.from(seq.promptIds), seq.params, EOS_IDS).tokens);
  });

  for (const policy of POLICY_NAMES) {
    test(`${policy}: under a steady stream of n = 1 requests an n = 8 request still finishes`, () => {
      // One new request a pass, each holding a place 4 passes: first samples alone fill the cap,
      // so without the overtake bound the later samples would wait for ever.
      const e = new TestEngine(policy, { tokenBudget: 64, maxSeqs: 4 }, 400, 4, false);
      const hog = e.addSamples(8, 5, 10);
      let passes = 0;
      while (!hog.every((s) => s.isFinished)) {
        e.add(5, 4);
        e.step();
        if (++passes > 4 * MAX_SAMPLE_OVERTAKES) throw new Error(`n = 8 unfinished after ${passes} passes`);
      }
      for (const seq of hog) expect(seq.numPreemptions).toBeLessThanOrEqual(MAX_SAMPLE_PREEMPTIONS);
      for (const seq of hog) expect(seq.outputIds).toEqual(referenceRun(Array.from(seq.promptIds), seq.params, EOS_IDS).tokens);
      e.drain();
      expect(e.blocks.numFreeBlocks).toBe(400);
    });
  }
});
