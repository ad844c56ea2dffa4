// The engine end to end on the CPU backend (real model, real fg_step): outputs must not depend
// on the policy, the token budget or the KV pool size (preemption by recomputation included).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import type { EngineOptions } from "../../src/engine/options";
import { runToCompletion } from "../../src/engine/runToCompletion";
import type { SamplingOptions } from "../../src/engine/samplingOptions";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
const ref = JSON.parse(readFileSync(join(FIXTURE, "reference.json"), "utf8"));
// Six prompts of 4..67 tokens: the fixture's three plus shifted copies.
const PROMPTS: number[][] = ref.prompts.flatMap((p: { prompt_ids: number[] }) => [p.prompt_ids, p.prompt_ids.slice(1).concat([7, 8])]);

async function run(opts: Partial<EngineOptions>, sampling: SamplingOptions) {
  const core = await EngineCore.load(FIXTURE, opts);
  try {
    const out = runToCompletion(core, PROMPTS.map((promptIds) => ({ promptIds })), sampling);
    const m = core.metrics();
    expect(m.kvBlocksFree).toBe(m.kvBlocksTotal); // every block back
    return { ids: out.map((o) => o.tokenIds), text: out.map((o) => o.text), preemptions: m.preemptionsTotal };
  } finally {
    core.destroy();
  }
}

const GREEDY: SamplingOptions = { maxTokens: 16, temperature: 0, ignoreEos: true };
const SAMPLED: SamplingOptions = { maxTokens: 16, temperature: 1, topK: 50, seed: 1234, ignoreEos: true };

describe("outputs are independent of policy, budget and KV pool", () => {
  for (const [name, sampling] of [["greedy", GREEDY], ["seeded sampling", SAMPLED]] as const) {
    test(name, async () => {
      const baseline = await run({ kvBlocks: 256, blockSize: 16, maxBatchTokens: 512 }, sampling);
      if (name === "greedy") PROMPTS.slice(0, 1).forEach((_, i) => expect(baseline.ids[0]!.slice(0, 12)).toEqual(ref.prompts[i].greedy_ids));
      let sawPreemption = false;
      for (const policy of ["splitfuse", "prefill-first", "orca"] as const) {
        for (const maxBatchTokens of [1, 7, 64, 512]) {
          // 24 blocks of 4 tokens hold one long sequence (67 + 16 tokens) with room to spare but
          // not all six at once: forces preemption by recomputation.
          for (const [kvBlocks, blockSize] of [[256, 16], [24, 4]] as const) {
            const got = await run({ policy, maxBatchTokens, kvBlocks, blockSize, maxSeqs: 8 }, sampling);
            expect({ policy, maxBatchTokens, kvBlocks, ids: got.ids }).toEqual({ policy, maxBatchTokens, kvBlocks, ids: baseline.ids });
            expect(got.text).toEqual(baseline.text);
            if (got.preemptions > 0) sawPreemption = true;
          }
        }
      }
      expect(sawPreemption).toBe(true);
    });
  }
});

describe("request lifecycle", () => {
  test("stop strings cut the text before the match; the stop string is reported", async () => {
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 64 });
    const [full] = runToCompletion(core, [{ promptIds: PROMPTS[2]! }], GREEDY);
    const stop = full!.text.slice(10, 13);
    const [cut] = runToCompletion(core, [{ promptIds: PROMPTS[2]! }], { ...GREEDY, stop: [stop, "never-there"] });
    expect(cut!.finishReason).toBe("stop");
    expect(cut!.text).toBe(full!.text.slice(0, full!.text.indexOf(stop)));
    core.destroy();
  });

  test("stop_token_ids, EOS and min_tokens", async () => {
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 64 });
    const [full] = runToCompletion(core, [{ promptIds: PROMPTS[1]! }], GREEDY);
    const stopId = full!.tokenIds[5]!;
    const firstAt = full!.tokenIds.indexOf(stopId);
    const [byId] = runToCompletion(core, [{ promptIds: PROMPTS[1]! }], { ...GREEDY, stopTokenIds: [stopId] });
    expect(byId!.finishReason).toBe("stop");
    expect(byId!.tokenIds).toEqual(full!.tokenIds.slice(0, firstAt + 1));
    // min_tokens bans the stop id until enough tokens exist, so the output must differ or run on.
    const [min] = runToCompletion(core, [{ promptIds: PROMPTS[1]! }], { ...GREEDY, stopTokenIds: [stopId], minTokens: firstAt + 2 });
    expect(min!.tokenIds.length).toBeGreaterThanOrEqual(firstAt + 2);
    expect(min!.tokenIds.slice(0, firstAt + 1).includes(stopId)).toBe(false);
    core.destroy();
  });

  test("n > 1 gives n samples; abort frees everything", async () => {
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 64 });
    core.addRequest("r", PROMPTS[0]!, { maxTokens: 8, temperature: 1, seed: 5, n: 3, ignoreEos: true });
    const bySample = new Map<number, number[]>();
    const done = new Set<number>();
    while (core.hasWork())
      for (const item of core.step())
        for (const d of item.deltas) {
          bySample.set(d.index, [...(bySample.get(d.index) ?? []), ...d.tokenIds]);
          if (d.finishReason) done.add(d.index);
        }
    expect([...done].sort()).toEqual([0, 1, 2]);
    const outs = [...bySample.values()].map((v) => v.join(","));
    expect(new Set(outs).size).toBeGreaterThan(1);

    core.addRequest("a", PROMPTS[4]!, { maxTokens: 50, ignoreEos: true, temperature: 0 });
    core.step();
    core.step();
    expect(core.metrics().kvBlocksFree).toBeLessThan(core.metrics().kvBlocksTotal);
    const closing = core.abort("a");
    expect(closing.at(-1)?.finishReason).toBe("abort");
    expect(core.hasWork()).toBe(false);
    expect(core.metrics().kvBlocksFree).toBe(core.metrics().kvBlocksTotal);
    core.destroy();
  });

  test("host timing counts every pass, the native forward pass inside the whole step", async () => {
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 64 });
    runToCompletion(core, [{ promptIds: PROMPTS[0]! }], { maxTokens: 4, temperature: 0, ignoreEos: true });
    const t = core.timing;
    expect(t.steps).toBe(core.metrics().stepsTotal);
    expect(t.steps).toBeGreaterThan(0);
    expect(t.nativeMs).toBeGreaterThan(0);
    expect(t.nativeMs).toBeLessThanOrEqual(t.stepMs);
    core.destroy();
  });

  test("a failed forward pass fails only its requests; the engine keeps serving", async () => {
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 64 });
    core.addRequest("x", PROMPTS[0]!, { maxTokens: 4, temperature: 0, ignoreEos: true });
    core.debugFailNextSteps(1);
    const items = core.step();
    expect(items.find((i) => i.id === "x")?.error?.message).toMatch(/forward pass failed/);
    expect(core.hasWork()).toBe(false);
    expect(core.metrics().kvBlocksFree).toBe(core.metrics().kvBlocksTotal);
    const [ok] = runToCompletion(core, [{ promptIds: PROMPTS[0]! }], { maxTokens: 4, temperature: 0, ignoreEos: true });
    expect(ok!.tokenIds).toHaveLength(4);
    core.destroy();
  });
});
