// Speculative decoding end to end on the CPU backend (real model, real fg_step, sample rows):
// with ngram or a draft model on, every request returns the same tokens, text and logprobs as
// without, whatever the policy, budget or KV pool (preemption, prefix caching on), greedy and
// seeded; stop strings, min_tokens and penalties behave as without speculation.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import type { EngineOptions } from "../../src/engine/options";
import { runToCompletion } from "../../src/engine/runToCompletion";
import type { SamplingOptions } from "../../src/engine/samplingOptions";
import { speculativeConfig } from "../../src/engine/speculative/config";
import type { SpeculativeConfig } from "../../src/engine/speculative/config";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
const OTHER = join(import.meta.dir, "..", "fixtures", "llama3-rope"); // same tokenizer, other weights
// Repetitive prompts (lookup finds matches) and plain ones, 5..60 tokens.
const PROMPTS: number[][] = [
  Array.from({ length: 40 }, (_, i) => 10 + (i % 7)),
  Array.from({ length: 60 }, (_, i) => 100 + ((i * 13) % 37)),
  [5, 9, 200, 31, 77],
  Array.from({ length: 24 }, (_, i) => 300 + (i % 3)),
];

async function run(opts: Partial<EngineOptions>, sampling: SamplingOptions) {
  const core = await EngineCore.load(FIXTURE, { maxSeqs: 8, ...opts });
  try {
    const out = runToCompletion(core, PROMPTS.map((promptIds) => ({ promptIds })), sampling);
    const m = core.metrics();
    expect(m.kvBlocksFree).toBe(m.kvBlocksTotal); // every block back
    return {
      ids: out.map((o) => o.tokenIds), text: out.map((o) => o.text), finish: out.map((o) => o.finishReason),
      logprobs: out.map((o) => o.tokenLogprobs.map((l) => Math.round(l.logprob * 1e3))),
      preemptions: m.preemptionsTotal, spec: m.specDecode,
    };
  } finally {
    core.destroy();
  }
}

const ngram = (k = 4): SpeculativeConfig => speculativeConfig({ method: "ngram", numSpeculativeTokens: k, promptLookupMin: 1, promptLookupMax: 3, disableByBatchSize: 1000 });
const GREEDY: SamplingOptions = { maxTokens: 24, temperature: 0, ignoreEos: true, logprobs: 2 };
const SAMPLED: SamplingOptions = { maxTokens: 24, temperature: 0.8, topK: 50, seed: 1234, ignoreEos: true, logprobs: 2 };
const strip = (r: Awaited<ReturnType<typeof run>>) => ({ ids: r.ids, text: r.text, finish: r.finish, logprobs: r.logprobs });

describe("speculative decoding gives the tokens of decoding without it", () => {
  for (const [name, sampling] of [["greedy", GREEDY], ["seeded sampling at 0.8", SAMPLED]] as const) {
    test(`ngram, ${name}: every policy, budget and pool`, async () => {
      const baseline = await run({ kvBlocks: 256, blockSize: 16 }, sampling);
      let drafts = 0, accepted = 0, preempted = false;
      for (const policy of ["splitfuse", "prefill-first", "orca"] as const) {
        for (const maxBatchTokens of [1, 7, 64, 512]) {
          for (const [kvBlocks, blockSize] of [[256, 16], [24, 4]] as const) {
            const got = await run({ policy, maxBatchTokens, kvBlocks, blockSize, speculative: ngram() }, sampling);
            expect({ policy, maxBatchTokens, kvBlocks, ...strip(got) }).toEqual({ policy, maxBatchTokens, kvBlocks, ...strip(baseline) });
            drafts += got.spec!.numDraftTokens;
            accepted += got.spec!.numAcceptedTokens;
            if (got.preemptions > 0) preempted = true;
          }
        }
      }
      expect(preempted).toBe(true);
      expect(accepted).toBeGreaterThan(0);
      expect(accepted).toBeLessThan(drafts);
    }, 120_000);
  }

  test("a draft model: the target itself is accepted whole (greedy and seeded), another model changes nothing", async () => {
    for (const sampling of [GREEDY, SAMPLED]) {
      const baseline = await run({ kvBlocks: 256, blockSize: 16 }, sampling);
      for (const maxBatchTokens of [7, 512]) {
        const self = await run({ maxBatchTokens, kvBlocks: 256, blockSize: 16, speculative: speculativeConfig({ method: "draft", draftModel: FIXTURE, disableByBatchSize: 1000 }) }, sampling);
        expect(strip(self)).toEqual(strip(baseline));
        expect(self.spec!.numDraftTokens).toBeGreaterThan(0);
        expect(self.spec!.numAcceptedTokens).toBe(self.spec!.numDraftTokens);
        const other = await run({ maxBatchTokens, kvBlocks: 24, blockSize: 4, speculative: speculativeConfig({ method: "draft", draftModel: OTHER, disableByBatchSize: 1000 }) }, sampling);
        expect(strip(other)).toEqual(strip(baseline));
        expect(other.spec!.numDraftTokens).toBeGreaterThan(0);
      }
    }
  }, 120_000);

  test("stop strings, min_tokens and penalties behave as without speculation", async () => {
    const plain = await run({}, GREEDY);
    // A stop string from inside a repetitive output: it falls inside accepted drafts.
    const stop = [plain.text[0]!.slice(6, 9)];
    for (const sampling of [
      { ...GREEDY, stop },
      { ...SAMPLED, stop, minTokens: 10, ignoreEos: false },
      { ...SAMPLED, presencePenalty: 0.5, frequencyPenalty: 0.3 },
      { ...GREEDY, repetitionPenalty: 1.3 },
    ]) {
      const base = await run({}, sampling);
      const spec = await run({ speculative: ngram(6) }, sampling);
      expect(strip(spec)).toEqual(strip(base));
      if ("stop" in sampling && sampling.temperature === 0) expect(base.finish[0]).toBe("stop");
      if (sampling.presencePenalty || sampling.repetitionPenalty) expect(spec.spec!.numDraftTokens).toBe(0); // per-row penalty lists are not in the contract
      else expect(spec.spec!.numDraftTokens).toBeGreaterThan(0);
    }
  }, 120_000);
});
