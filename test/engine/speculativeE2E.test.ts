// Speculative decoding end to end on the CPU backend (real model, real fg_step, sample rows):
// with ngram or a draft model on, every request returns the same tokens, text and logprobs as
// without, whatever the policy, budget or KV pool (preemption, prefix caching on), greedy and
// seeded, with and without presence / frequency / repetition penalties (the library penalizes
// each verification row as if the drafts before it were generated); stop strings, min_tokens and
// bad_words (per-row masks) behave as without speculation.
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

const ngram = (k = 4): SpeculativeConfig => speculativeConfig({ method: "ngram", numSpeculativeTokens: k, promptLookupMin: 1, promptLookupMax: 3, disableByBatchSize: 1000, autoDisable: false });
const GREEDY: SamplingOptions = { maxTokens: 24, temperature: 0, ignoreEos: true, logprobs: 2 };
const SAMPLED: SamplingOptions = { maxTokens: 24, temperature: 0.8, topK: 50, seed: 1234, ignoreEos: true, logprobs: 2 };
const strip = (r: Awaited<ReturnType<typeof run>>) => ({ ids: r.ids, text: r.text, finish: r.finish, logprobs: r.logprobs });
// Penalties mild enough that the lookup's drafts of the repetitive prompts are still accepted.
const PENALIZED: [string, SamplingOptions][] = [
  ["greedy, presence 0.5 + frequency 0.3 + repetition 1.05", { ...GREEDY, presencePenalty: 0.5, frequencyPenalty: 0.3, repetitionPenalty: 1.05 }],
  ["seeded at 0.8, frequency 0.2 + repetition 1.05", { ...SAMPLED, frequencyPenalty: 0.2, repetitionPenalty: 1.05 }],
];
const selfDraft = () => speculativeConfig({ method: "draft", draftModel: FIXTURE, disableByBatchSize: 1000, autoDisable: false });

describe("speculative decoding gives the tokens of decoding without it", () => {
  for (const [name, sampling] of [["greedy", GREEDY], ["seeded sampling at 0.8", SAMPLED], ...PENALIZED] as const) {
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

  // The draft applies the request's penalties with its drafted tokens as outputs, and the target
  // penalizes each verification row with the drafts before it: a draft equal to the target is
  // then accepted whole with penalties too, which holds only if every row's list is the one
  // decoding token by token would have.
  test("a draft model: the target itself is accepted whole (greedy and seeded, with and without penalties), another model changes nothing", async () => {
    for (const sampling of [GREEDY, SAMPLED, { ...GREEDY, repetitionPenalty: 1.3 }, { ...SAMPLED, presencePenalty: 0.8, frequencyPenalty: 0.5, repetitionPenalty: 1.2 }]) {
      const baseline = await run({ kvBlocks: 256, blockSize: 16 }, sampling);
      for (const maxBatchTokens of [7, 512]) {
        const self = await run({ maxBatchTokens, kvBlocks: 256, blockSize: 16, speculative: selfDraft() }, sampling);
        expect(strip(self)).toEqual(strip(baseline));
        expect(self.spec!.numDraftTokens).toBeGreaterThan(0);
        expect(self.spec!.numAcceptedTokens).toBe(self.spec!.numDraftTokens);
        const other = await run({ maxBatchTokens, kvBlocks: 24, blockSize: 4, speculative: speculativeConfig({ method: "draft", draftModel: OTHER, disableByBatchSize: 1000, autoDisable: false }) }, sampling);
        expect(strip(other)).toEqual(strip(baseline));
        expect(other.spec!.numDraftTokens).toBeGreaterThan(0);
      }
    }
  }, 120_000);

  // The draft samples under the request's constraints as the target's rows do: a draft equal to
  // the target is accepted whole only if its rows see the same bias, bans and allowed set.
  test("a draft model under logit_bias, allowed_token_ids, bad_words and min_tokens: the target itself is accepted whole", async () => {
    const plain = await run({}, GREEDY);
    const badWords = [plain.ids[0]!.slice(4, 6), plain.ids[1]!.slice(8, 11), [plain.ids[2]![5]!]];
    const allowed = [...new Set(plain.ids.flat())].slice(0, 12).concat([7, 8, 9]);
    for (const sampling of [
      { ...GREEDY, logitBias: { [String(plain.ids[0]![3]!)]: 4, [String(plain.ids[2]![1]!)]: -100 } },
      { ...SAMPLED, allowedTokenIds: allowed },
      { ...GREEDY, badWords },
      { ...SAMPLED, badWords, presencePenalty: 0.4, logitBias: { "11": 2 } },
      { ...SAMPLED, minTokens: 12, ignoreEos: false, logitBias: { "2": 3 } },
    ] as SamplingOptions[]) {
      const base = await run({}, sampling);
      for (const maxBatchTokens of [7, 512]) {
        const self = await run({ maxBatchTokens, kvBlocks: 256, blockSize: 16, speculative: selfDraft() }, sampling);
        expect(strip(self)).toEqual(strip(base));
        expect(self.spec!.numDraftTokens).toBeGreaterThan(0);
        expect({ sampling, accepted: self.spec!.numAcceptedTokens }).toEqual({ sampling, accepted: self.spec!.numDraftTokens });
      }
    }
  }, 120_000);

  test("stop strings, min_tokens, penalties and bad_words behave as without speculation", async () => {
    const plain = await run({}, GREEDY);
    // A stop string from inside a repetitive output: it falls inside accepted drafts.
    const stop = [plain.text[0]!.slice(6, 9)];
    // Bad words cut from the outputs without them (two and three tokens, and one of one token):
    // their bans fire inside drafts the lookup proposes from the repetitive prompts.
    const badWords = [plain.ids[0]!.slice(4, 6), plain.ids[1]!.slice(8, 11), plain.ids[3]!.slice(2, 4), [plain.ids[2]![5]!]];
    for (const sampling of [
      { ...GREEDY, stop },
      { ...SAMPLED, stop, minTokens: 10, ignoreEos: false },
      { ...SAMPLED, presencePenalty: 0.5, frequencyPenalty: 0.3 },
      { ...GREEDY, repetitionPenalty: 1.3 },
      { ...GREEDY, badWords },
      { ...SAMPLED, badWords, frequencyPenalty: 0.2 },
    ]) {
      const base = await run({}, sampling);
      let accepted = 0;
      for (const [policy, maxBatchTokens, method] of [["splitfuse", 512, "ngram"], ["splitfuse", 7, "ngram"], ["orca", 64, "ngram"], ["splitfuse", 512, "draft"], ["splitfuse", 7, "draft"]] as const) {
        const spec = await run({ policy, maxBatchTokens, speculative: method === "ngram" ? ngram(6) : selfDraft() }, sampling);
        expect({ policy, maxBatchTokens, method, ...strip(spec) }).toEqual({ policy, maxBatchTokens, method, ...strip(base) });
        accepted += spec.spec!.numAcceptedTokens;
      }
      expect(accepted).toBeGreaterThan(0);
      if ("stop" in sampling && sampling.temperature === 0) expect(base.finish[0]).toBe("stop");
      if ("badWords" in sampling && sampling.temperature === 0) expect(base.ids).not.toEqual(plain.ids); // the bans fired
    }
  }, 120_000);
});

// A real pair: the demo model and its draft (models/make_demo_draft.py: 0.39M parameters
// distilled from the 1.97M demo model, same tokenizer). Acceptance is the draft's agreement with
// the target, not 100% (the target as its own draft) nor ~0 (a random draft): fp32 on the CPU
// makes it deterministic, and the outputs stay the target's.
describe("the demo model with its distilled draft", () => {
  const DEMO = join(import.meta.dir, "..", "..", "models", "fastgen-demo-tiny");
  const DRAFT = join(import.meta.dir, "..", "..", "models", "fastgen-demo-draft");
  const TEXTS = ["Return the number of items in a container. ", "The os module provides a portable way of using operating system dependent functionality. "];

  test("same tokens as without it, greedy and seeded; a real acceptance rate", async () => {
    for (const sampling of [{ ...GREEDY, maxTokens: 48 }, { ...SAMPLED, maxTokens: 48, topK: 0, temperature: 0.7 }] as SamplingOptions[]) {
      const runDemo = async (speculative?: SpeculativeConfig) => {
        const core = await EngineCore.load(DEMO, { maxSeqs: 4, speculative });
        try {
          const prompts = TEXTS.map((t) => ({ promptIds: core.tokenizer.encode(t.repeat(2), { addSpecialTokens: true }) }));
          const out = runToCompletion(core, prompts, sampling);
          return { ids: out.map((o) => o.tokenIds), spec: core.metrics().specDecode };
        } finally {
          core.destroy();
        }
      };
      const base = await runDemo();
      const got = await runDemo(speculativeConfig({ method: "draft", draftModel: DRAFT, autoDisable: false }));
      expect(got.ids).toEqual(base.ids);
      const rate = got.spec!.numAcceptedTokens / got.spec!.numDraftTokens;
      expect(got.spec!.numDraftTokens).toBeGreaterThan(20);
      expect(rate).toBeGreaterThan(0.15);
      expect(rate).toBeLessThan(0.95);
    }
  }, 60_000);
});
