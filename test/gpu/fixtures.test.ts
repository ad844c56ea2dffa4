// Each fixture model (test/fixtures) on the CUDA backend through the whole engine, against
// transformers' fp32 reference.json: greedy ids equal up to a near-tie, top-5 logprobs before it
// within fixtureTolerance (gpuHelpers.ts: 1.25x the drift transformers itself shows in bf16 on
// the same references, at least 0.3); the same with 7-token chunks and block size 4.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import { runToCompletion } from "../../src/engine/runToCompletion";
import { fixtureTolerance, hasGpu } from "./gpuHelpers";

// Every fixture: each architecture the project supports runs on the CUDA backend.
const FIXTURES = ["llama-gqa", "llama3-rope", "mistral-swa", "qwen2", "opt", "opt-postnorm-proj", "falcon-gqa", "falcon-mqa", "phi", "mixtral",
  // the second wave (make_fixtures_families.py), DeepSeek-V2's latent attention included
  "qwen3", "qwen3-moe", "qwen2-moe", "gemma2", "gemma3", "phi3-longrope", "phi3-short", "llama-yarn",
  "deepseek-v2-lite", "deepseek-v2"];
const dir = (name: string) => join(import.meta.dir, "..", "fixtures", name);

interface Reference {
  prompts: { prompt_ids: number[]; greedy_ids: number[]; top5: [number, number][][]; greedy_margins?: number[] }[];
}

function compare(name: string, ref: Reference, out: { tokenIds: number[]; logprobs: [number, number][][] }[]) {
  let worst = 0;
  ref.prompts.forEach((p, i) => {
    const got = out[i]!;
    let j = 0;
    while (j < p.greedy_ids.length && got.tokenIds[j] === p.greedy_ids[j]) j++;
    if (j < p.greedy_ids.length) {
      const top = p.top5[j]!;
      const margin = p.greedy_margins?.[j] ?? top[0]![1] - top[1]![1];
      console.log(`${name} prompt ${i}: diverges at step ${j} (reference margin ${margin.toFixed(4)})`);
      expect(margin).toBeLessThan(fixtureTolerance(name.split(" ")[0]!));
    }
    for (let k = 0; k < j; k++) {
      const mine = new Map(got.logprobs[k]!);
      for (const [id, lp] of p.top5[k]!) {
        const g = mine.get(id);
        if (g === undefined) continue;  // a near-tie may swap the 5th
        worst = Math.max(worst, Math.abs(g - lp));
      }
    }
  });
  console.log(`${name}: worst top-5 logprob diff ${worst.toExponential(2)}`);
  expect(worst).toBeLessThan(fixtureTolerance(name.split(" ")[0]!));
}

describe.skipIf(!hasGpu)("fixtures on cuda", () => {
  const cores: EngineCore[] = [];
  afterAll(() => cores.forEach((c) => c.destroy()));
  for (const name of FIXTURES) {
    const ref: Reference = JSON.parse(readFileSync(join(dir(name), "reference.json"), "utf8"));
    const n = ref.prompts[0]!.greedy_ids.length;
    for (const [label, opts] of [["one batch", { kvBlocks: 64, blockSize: 16 }], ["7-token chunks, block 4", { maxBatchTokens: 7, blockSize: 4, kvBlocks: 256 }]] as const) {
      test(`${name}: greedy ids and top-5 logprobs (${label})`, async () => {
        const core = await EngineCore.load(dir(name), { backend: "cuda", ...opts });
        cores.push(core);
        const out = runToCompletion(core, ref.prompts.map((p) => ({ promptIds: p.prompt_ids })), {
          maxTokens: n, temperature: 0, logprobs: 5, ignoreEos: true,
        });
        compare(`${name} (${label})`, ref, out);
      });
    }
  }
});
