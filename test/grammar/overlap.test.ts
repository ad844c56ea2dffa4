// Overlapped steps through the whole engine (demo model, CPU): the forward pass of each step is
// launched before its rows' grammar masks are computed (EngineOptions.overlapSteps, the default;
// FASTGEN_STEP_OVERLAP in the library), and the outputs are those of the plain path (masks first,
// one fg_step) token for token and logprob for logprob. Aborts and destroy while a pass is in
// flight are safe. The masks come from the grammar Worker either way; the engine awaits them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { EngineCore } from "../../src/engine/engineCore";
import type { SamplingOptions } from "../../src/engine/samplingOptions";
import { PERSON_SCHEMA, loadDemo, schemaErrors } from "./helpers";

interface Sampled {
  text: string;
  tokenIds: number[];
  logprobs: number[];
  finish: string;
}

/** Prompt and options of each request of a mixed workload: grammars, n > 1, plain rows, penalties. */
function workload(seed: number): { prompt: string; sampling: SamplingOptions }[] {
  const json = { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) };
  return [
    { prompt: "Describe a person:", sampling: { maxTokens: 120, temperature: 1, seed, n: 3, structured: json, logprobs: 2 } },
    { prompt: "Phone:", sampling: { maxTokens: 30, temperature: 0.8, seed: seed + 1, structured: { type: "regex", pattern: "[0-9]{3}-[0-9]{4}" } } },
    { prompt: "Answer:", sampling: { maxTokens: 10, temperature: 1, seed: seed + 2, structured: { type: "choice", choices: ["yes", "no", "maybe so"] } } },
    { prompt: "Free text, allowed ids:", sampling: { maxTokens: 20, temperature: 1, seed: seed + 3, allowedTokenIds: [10, 11, 12, 13, 50, 51, 400], logprobs: 1 } },
    { prompt: "Free text, penalties:", sampling: { maxTokens: 25, temperature: 0.9, seed: seed + 4, repetitionPenalty: 1.2, presencePenalty: 0.4, frequencyPenalty: 0.2, topK: 40 } },
    { prompt: "Greedy JSON:", sampling: { maxTokens: 80, temperature: 0, structured: { type: "json" as const } } },
  ];
}

/** Runs the workload to completion as the engine host does: launch, await masks, finish. */
async function run(core: EngineCore, reqs: { prompt: string; sampling: SamplingOptions }[]): Promise<Sampled[][]> {
  const out = reqs.map((r) => Array.from({ length: r.sampling.n ?? 1 }, (): Sampled => ({ text: "", tokenIds: [], logprobs: [], finish: "" })));
  for (let i = 0; i < reqs.length; i++)
    await core.addRequestAsync(String(i), core.tokenizer.encode(reqs[i]!.prompt, { addSpecialTokens: true }), reqs[i]!.sampling);
  while (core.hasWork()) {
    core.launchStep();
    await core.prepareMasks();
    for (const { id, deltas, error } of core.finishStep()) {
      if (error) throw error;
      for (const d of deltas) {
        const s = out[Number(id)]![d.index]!;
        s.text += d.text;
        s.tokenIds.push(...d.tokenIds);
        for (const lp of d.logprobs ?? []) s.logprobs.push(lp.logprob, ...lp.top.flat());
        if (d.finishReason) s.finish = d.finishReason;
      }
    }
  }
  return out;
}

let on: EngineCore, off: EngineCore;
beforeAll(async () => {
  on = await loadDemo({ overlapSteps: true, maxSeqs: 16 });
  off = await loadDemo({ overlapSteps: false, maxSeqs: 16 });
});
afterAll(() => {
  on.destroy();
  off.destroy();
});

describe("overlapped steps", () => {
  test("grammar-constrained and plain requests: the same tokens and logprobs with overlap on and off", async () => {
    for (const seed of [3, 17]) {
      const reqs = workload(seed);
      const a = await run(off, reqs);
      const b = await run(on, reqs);
      expect(b).toEqual(a);
      for (const s of a[0]!) if (s.finish === "stop") expect(schemaErrors(JSON.parse(s.text), PERSON_SCHEMA)).toEqual([]);
      expect(a[1]![0]!.tokenIds.length).toBeGreaterThan(0);
    }
    expect(on.metrics().kvBlocksFree).toBe(on.metrics().kvBlocksTotal);
  });

  test("FASTGEN_STEP_OVERLAP=0 (the library starts nothing at launch) gives the same tokens", async () => {
    const script = `
      import { loadDemo } from ${JSON.stringify(join(import.meta.dir, "helpers.ts"))};
      import { PERSON_SCHEMA } from ${JSON.stringify(join(import.meta.dir, "helpers.ts"))};
      const core = await loadDemo({ maxSeqs: 16 });
      const sampling = { maxTokens: 60, temperature: 1, seed: 5, n: 2, structured: { type: "json", schema: JSON.stringify(PERSON_SCHEMA) } };
      await core.addRequestAsync("0", core.tokenizer.encode("Person:", { addSpecialTokens: true }), sampling);
      const ids = [[], []];
      while (core.hasWork()) {
        core.launchStep();
        await core.prepareMasks();
        for (const it of core.finishStep()) for (const d of it.deltas) ids[d.index].push(...d.tokenIds);
      }
      core.destroy();
      console.log(JSON.stringify(ids));`;
    const p = Bun.spawnSync([process.execPath, "-e", script], { env: { ...process.env, FASTGEN_STEP_OVERLAP: "0" }, stdout: "pipe", stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    const theirs = JSON.parse(p.stdout.toString().trim().split("\n").pop()!) as number[][];
    const sampling = { maxTokens: 60, temperature: 1, seed: 5, n: 2, structured: { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) } };
    const ours = await run(on, [{ prompt: "Person:", sampling }]);
    expect(theirs).toEqual(ours[0]!.map((s) => s.tokenIds));
  });

  test("an abort while the pass runs: its request closes, the others go on unchanged", async () => {
    const reqs = workload(9);
    const alone = await run(on, reqs.slice(1, 3));
    for (let i = 0; i < 3; i++) await on.addRequestAsync(String(i), on.tokenizer.encode(reqs[i]!.prompt, { addSpecialTokens: true }), reqs[i]!.sampling);
    const got: number[][] = [[], [], []];
    let passes = 0, aborted = false;
    while (on.hasWork()) {
      on.launchStep();
      const masks = on.prepareMasks();
      if (masks) await masks;
      if (++passes === 4) {
        const closing = on.abort("0"); // while the pass is in flight: its rows are skipped at finish
        expect(closing.at(-1)?.finishReason).toBe("abort");
        aborted = true;
      }
      for (const { id, deltas, error } of on.finishStep()) {
        if (error) throw error;
        for (const d of deltas) if (d.index === 0) got[Number(id)]!.push(...d.tokenIds);
      }
    }
    expect(aborted).toBe(true);
    expect(got[1]).toEqual(alone[0]![0]!.tokenIds);
    expect(got[2]).toEqual(alone[1]![0]!.tokenIds);
    expect(on.metrics().kvBlocksFree).toBe(on.metrics().kvBlocksTotal);
  });

  test("destroy while a pass is in flight", async () => {
    const core = await loadDemo();
    await core.addRequestAsync("x", core.tokenizer.encode("Person:", { addSpecialTokens: true }), {
      maxTokens: 50, temperature: 1, seed: 1, structured: { type: "json", schema: JSON.stringify(PERSON_SCHEMA) },
    });
    core.launchStep();
    expect(core.passInFlight).toBe(true);
    await core.prepareMasks();
    core.destroy();
    expect(core.passInFlight).toBe(false);
    expect(() => core.finishStep()).toThrow("no pass in flight");
  });
});
