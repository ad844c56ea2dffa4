// Prompt logprobs (echo + logprobs) on the CUDA backend: for every fixture, each prompt token's
// logprob and top-5 under the logits of the token before it, against transformers' prefill
// top-5 (test/fixtures/*/reference.json) within the bf16 tolerance, whole and in 5-token chunks;
// the reported token's logprob equals its entry in the top-5 when it is there. With two devices,
// the same at tensor parallel 2.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import { runToCompletion } from "../../src/engine/runToCompletion";
import { cudaDeviceCount } from "../../src/native";
import { fixtureTolerance, hasGpu } from "./gpuHelpers";

const FIXTURES = ["llama-gqa", "llama3-rope", "mistral-swa", "qwen2", "opt", "opt-postnorm-proj", "falcon-gqa", "falcon-mqa", "phi", "mixtral"];

interface Reference { prompts: { prompt_ids: number[]; prefill_top5: [number, number][][] }[] }

async function check(name: string, opts: { maxBatchTokens: number; tensorParallel?: number }): Promise<number> {
  const dir = join(import.meta.dir, "..", "fixtures", name);
  const ref: Reference = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
  const core = await EngineCore.load(dir, { backend: "cuda", kvBlocks: 64, blockSize: 16, ...opts });
  try {
    const out = runToCompletion(core, ref.prompts.map((p) => ({ promptIds: p.prompt_ids })), {
      maxTokens: 1, temperature: 0, ignoreEos: true, promptLogprobs: 5,
    });
    let worst = 0;
    ref.prompts.forEach((p, i) => {
      const lps = out[i]!.promptLogprobs!;
      expect(lps).toHaveLength(p.prompt_ids.length);
      expect(lps[0]).toBeNull();
      for (let pos = 1; pos < p.prompt_ids.length; pos++) {
        const lp = lps[pos]!;
        expect(lp.id).toBe(p.prompt_ids[pos]!);
        const mine = new Map(lp.top);
        for (const [id, ref5] of p.prefill_top5[pos - 1]!) {
          const g = mine.get(id);
          if (g !== undefined) worst = Math.max(worst, Math.abs(g - ref5));
        }
        const inTop = mine.get(lp.id);
        if (inTop !== undefined) expect(Math.abs(inTop - lp.logprob)).toBeLessThan(1e-5);
        else expect(lp.logprob).toBeLessThanOrEqual(lp.top[4]![1] + 1e-5);
      }
    });
    return worst;
  } finally {
    core.destroy();
  }
}

describe.skipIf(!hasGpu)("prompt logprobs on cuda", () => {
  for (const name of FIXTURES)
    test(`${name}: against transformers' prefill top-5, whole and in 5-token chunks`, async () => {
      const whole = await check(name, { maxBatchTokens: 512 }), chunked = await check(name, { maxBatchTokens: 5 });
      console.log(`${name} prompt logprobs: worst top-5 diff ${whole.toExponential(2)} (whole), ${chunked.toExponential(2)} (5-token chunks)`);
      expect(whole).toBeLessThan(fixtureTolerance(name));
      expect(chunked).toBeLessThan(fixtureTolerance(name));
    });

  test.skipIf(cudaDeviceCount() < 2)("llama-gqa and mixtral at tensor parallel 2", async () => {
    for (const name of ["llama-gqa", "mixtral"]) {
      const w = await check(name, { maxBatchTokens: 7, tensorParallel: 2 });
      console.log(`${name} prompt logprobs TP=2: worst top-5 diff ${w.toExponential(2)}`);
      expect(w).toBeLessThan(fixtureTolerance(name));
    }
  });
});
