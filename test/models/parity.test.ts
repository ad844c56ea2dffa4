// Each fixture model (test/fixtures, made with transformers by make_fixtures*.py) against its
// transformers fp32 reference: greedy ids equal, top-5 logprobs within 1e-4 absolute, prompts
// tokenized identically — through the whole engine (scheduler, batch builder, fg_step).
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import { runToCompletion } from "../../src/engine/runToCompletion";
import { loadWeights, openModelDir } from "../../src/model/load";
import { NativeEngine } from "../../src/native";
import { makeBatch, relErr } from "../native/helpers";

// make_fixtures.py, make_fixtures_more.py (OPT, Falcon, Phi, Mixtral), make_fixtures_families.py.
const FIXTURES = [
  "llama-gqa", "llama3-rope", "mistral-swa", "qwen2",
  "opt", "opt-postnorm-proj", "falcon-gqa", "falcon-mqa", "phi", "mixtral",
  // make_fixtures_families.py (the second wave)
  "qwen3", "qwen3-moe", "qwen2-moe", "gemma2", "gemma3", "phi3-longrope", "phi3-short", "llama-yarn",
  "deepseek-v2-lite", "deepseek-v2",
];
/**
 * Per-fixture tolerances where the default (logits 1e-5 relative, top-5 1e-4 absolute) is tighter
 * than fp32 allows. phi3-longrope's attention factor 2.83 multiplies every score by 8, so the ulp
 * differences between transformers' fp32 RoPE tables and ours (angles in double) grow to 1.6e-5 /
 * 1.5e-4; issue #21 asks for 1e-3.
 */
const TOLERANCE: Record<string, { logits: number; top5: number }> = {
  "phi3-longrope": { logits: 1e-4, top5: 1e-3 },
};
const tolOf = (name: string) => TOLERANCE[name] ?? { logits: 1e-5, top5: 1e-4 };
const fixtureDir = (name: string) => join(import.meta.dir, "..", "fixtures", name);

interface Reference {
  prompts: {
    text: string; prompt_ids: number[]; greedy_ids: number[]; top5: [number, number][][];
    last_prompt_logits: number[];
  }[];
}

/** Our top-5 vs the reference's: same ids with logprobs within tol (a tie may swap the 5th). */
function expectTop5Close(ours: [number, number][], ref: [number, number][], tol = 1e-4) {
  const mine = new Map(ours);
  const fifth = ours[ours.length - 1]![1];
  for (const [id, lp] of ref) {
    const got = mine.get(id);
    if (got === undefined) expect(Math.abs(lp - fifth)).toBeLessThan(tol);
    else expect(Math.abs(got - lp)).toBeLessThan(tol);
  }
}

for (const name of FIXTURES) {
  describe(`fixture ${name}`, () => {
    const ref: Reference = JSON.parse(readFileSync(join(fixtureDir(name), "reference.json"), "utf8"));
    const cores: EngineCore[] = [];
    afterAll(() => cores.forEach((c) => c.destroy()));
    const load = async (opts = {}) => {
      const c = await EngineCore.load(fixtureDir(name), { kvBlocks: 64, blockSize: 16, ...opts });
      cores.push(c);
      return c;
    };

    const tol = tolOf(name);
    test(`every logit at the last prompt position matches transformers (relative error < ${tol.logits})`, () => {
      const model = openModelDir(fixtureDir(name));
      const engine = NativeEngine.create(model.spec);
      loadWeights(model, engine);
      model.close();
      engine.finalize({ numBlocks: 64, blockSize: 16 });
      for (const p of ref.prompts) {
        const blocks = Array.from({ length: Math.ceil(p.prompt_ids.length / 16) }, (_, i) => i);
        const out = engine.step(makeBatch([{ tokens: p.prompt_ids, context: 0, blocks, wants: true }], { returnLogits: true }));
        expect(relErr(out.logits!, p.last_prompt_logits)).toBeLessThan(tol.logits);
      }
      engine.destroy();
    });

    test("the tokenizer gives transformers' prompt ids", async () => {
      const core = await load();
      for (const p of ref.prompts) expect(core.tokenizer.encode(p.text, { addSpecialTokens: true })).toEqual(p.prompt_ids);
    });

    test("greedy ids and top-5 logprobs match transformers (all prompts in one batch)", async () => {
      const core = await load();
      const n = ref.prompts[0]!.greedy_ids.length;
      const out = runToCompletion(core, ref.prompts.map((p) => ({ promptIds: p.prompt_ids })), {
        maxTokens: n, temperature: 0, logprobs: 5, ignoreEos: true,
      });
      ref.prompts.forEach((p, i) => {
        expect(out[i]!.tokenIds).toEqual(p.greedy_ids);
        expect(out[i]!.finishReason).toBe("length");
        p.top5.forEach((top, j) => expectTop5Close(out[i]!.logprobs[j]!, top, tol.top5));
      });
    });

    test("the same with prompts split into 7-token chunks (token budget 7, block size 4)", async () => {
      const core = await load({ maxBatchTokens: 7, blockSize: 4, kvBlocks: 256 });
      const n = ref.prompts[0]!.greedy_ids.length;
      const out = runToCompletion(core, ref.prompts.map((p) => ({ promptIds: p.prompt_ids })), {
        maxTokens: n, temperature: 0, logprobs: 5, ignoreEos: true,
      });
      ref.prompts.forEach((p, i) => {
        expect(out[i]!.tokenIds).toEqual(p.greedy_ids);
        p.top5.forEach((top, j) => expectTop5Close(out[i]!.logprobs[j]!, top, tol.top5));
      });
    });
  });
}

// Prompt logprobs (echo + logprobs, lm-eval style scoring): every prompt position's top-5 equals
// transformers' prefill top-5, also when the prompt is split into chunks across passes.
describe("prompt logprobs", () => {
  for (const name of FIXTURES) {
    test(`${name}: against transformers' prefill top-5`, async () => {
      const ref = JSON.parse(readFileSync(join(fixtureDir(name), "reference.json"), "utf8"));
      for (const budget of [512, 5]) {
        const core = await EngineCore.load(fixtureDir(name), { kvBlocks: 64, blockSize: 4, maxBatchTokens: budget });
        const prompts = ref.prompts as { prompt_ids: number[]; prefill_top5: [number, number][][] }[];
        const out = runToCompletion(core, prompts.map((p) => ({ promptIds: p.prompt_ids })), {
          maxTokens: 1, temperature: 0, ignoreEos: true, promptLogprobs: 5,
        });
        core.destroy();
        prompts.forEach((p, i) => {
          const lps = out[i]!.promptLogprobs!;
          expect(lps).toHaveLength(p.prompt_ids.length);
          expect(lps[0]).toBeNull();
          for (let pos = 1; pos < p.prompt_ids.length; pos++) {
            const lp = lps[pos]!;
            expect(lp.id).toBe(p.prompt_ids[pos]!);
            expectTop5Close(lp.top, p.prefill_top5[pos - 1]!, tolOf(name).top5);
            const inTop = lp.top.find(([id]) => id === lp.id);
            if (inTop) expect(Math.abs(inTop[1] - lp.logprob)).toBeLessThan(1e-5);
            else expect(lp.logprob).toBeLessThanOrEqual(lp.top[4]![1] + 1e-5);
          }
        });
      }
    });
  }
});
