/**
 * The conformance suite every scheduling policy runs: thousands of random request mixes
 * (prompt and generation lengths, arrival times, aborts, sampling options, requests of several
 * samples, KV pools from roomy to too small) at budgets 1, 7, 64 and 512. Whatever the policy,
 * budget or pool, every request must finish exactly once with the tokens of the unconstrained
 * run, and the pool must be whole at the end. runMix() checks the per-step invariants.
 *
 * Prefix caching: half the mixes build their prompts from a few shared prefixes (and cache
 * salts), so admissions hit cached blocks, siblings share them within a pass, and eviction and
 * preemption meet shared blocks. The same mixes also run with the cache off: both runs must give
 * the unconstrained run's tokens, so the cache changes nothing a request returns. runMix checks
 * every step that references match the tables, no block is both free and referenced, and no
 * cached block is written; at the end every reference is back to zero.
 *
 * Fair share: a request of many long samples must not hold the engine. A small request that
 * arrives while one runs gets its first token in the pass it arrives in, under every policy.
 */
import { expect, test } from "bun:test";
import type { PolicyName } from "../../src/engine/scheduler";
import { samplingParams } from "../../src/engine/samplingParams";
import type { SamplingInput } from "../../src/engine/samplingParams";
import { VOCAB } from "./fakeModel";
import { EOS_IDS, runMix } from "./harness";
import type { MixResult, MixSpec, RequestSpec } from "./harness";
import { referenceRun } from "./reference";

export const BUDGETS = [1, 7, 64, 512] as const;
const MIXES_PER_BUDGET = Number(process.env.FASTGEN_MIXES ?? 500);

/** mulberry32: a small seeded PRNG, so a failing mix can be replayed from its label. */
export function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % 2 ** 32) % n;
  };
}

function pick<T>(r: (n: number) => number, xs: readonly T[]): T {
  return xs[r(xs.length)]!;
}

export function randomMix(policy: PolicyName, budget: number, seed: number, prefixCaching = true): MixSpec {
  const r = rng(seed);
  // A quarter of the mixes are "pressure" mixes: many short prompts with long generations
  // arriving together on a tight pool, so running decodes collide and get preempted.
  const pressure = r(4) === 0;
  const blockSize = pick(r, [1, 2, 4, 16]);
  const maxSeqs = pressure ? pick(r, [4, 8, 256]) : pick(r, [1, 2, 3, 8, 256]);
  const promptScale = pressure || budget === 1 ? pick(r, [4, 16]) : pick(r, [4, 24, 120, 700]);
  const genScale = pressure ? 120 : pick(r, [3, 12, 40, 120]);
  const numRequests = pressure ? 6 + r(7) : 1 + r(promptScale > 100 ? 6 : 12);
  const requests: RequestSpec[] = [];
  // Shared-prefix mixes: prompts are one of a few prefixes plus a short suffix (maybe none).
  const prefixes = r(2) === 0 ? Array.from({ length: 1 + r(3) }, () => Array.from({ length: 1 + r(promptScale) }, () => r(VOCAB))) : [];
  const salts = ["", "", "tenant-b"];
  // bad_words come from a stream of their own, so the mixes' other choices stay as they were
  const rb = rng(seed ^ 0x2545f491);
  for (let k = 0; k < numRequests; k++) {
    const prompt = prefixes.length > 0
      ? [...pick(r, prefixes), ...Array.from({ length: r(1 + (promptScale >> 2)) }, () => r(VOCAB))]
      : Array.from({ length: 1 + r(promptScale) }, () => r(VOCAB));
    const maxTokens = 1 + r(genScale);
    const bias: Record<number, number> = {};
    if (r(5) === 0) {
      bias[r(VOCAB)] = -100;
      bias[r(VOCAB)] = 3;
    }
    const pen = r(7) === 0;
    const options: SamplingInput = {
      maxTokens,
      minTokens: r(5) === 0 ? r(maxTokens + 1) : 0,
      temperature: r(2) === 0 ? 0 : 0.8,
      seed: r(1e9),
      ignoreEos: r(7) === 0,
      stopTokenIds: r(3) === 0 ? [1 + r(VOCAB - 1)] : [],
      logitBias: bias,
      presencePenalty: pen && r(2) === 0 ? 0.5 : 0,
      frequencyPenalty: pen && r(2) === 0 ? -0.25 : 0,
      repetitionPenalty: pen && r(2) === 0 ? 1.3 : 1,
      logprobs: r(4) === 0 ? r(6) : 0,
      cacheSalt: pick(r, salts),
    };
    if (rb(5) === 0) options.badWords = badWordsFor(prompt, options, rb);
    const arrivalStep = pressure || r(2) === 0 ? 0 : r(60);
    // Some requests have several samples (n > 1): one sequence each, sample indexes 0..n-1.
    const n = r(6) === 0 ? 2 + r(4) : 1;
    for (let i = 0; i < n; i++) {
      const req: RequestSpec = { id: requests.length, arrivalStep, prompt, params: samplingParams({ ...options, seed: options.seed! + i }), sampleIndex: i };
      if (r(10) === 0) {
        req.abortAtStep = arrivalStep + r(40);
        req.abortMidStep = r(2) === 0;
      }
      requests.push(req);
    }
  }
  const blocksFor = (n: number) => Math.ceil(n / blockSize);
  const maxNeed = Math.max(...requests.map((q) => blocksFor(q.prompt.length + q.params.maxTokens - 1)));
  const mode = r(20);
  const numBlocks =
    mode < 2 ? Math.max(1, maxNeed - 1 - r(3)) // too small for some: rejections
    : mode < 14 || pressure ? maxNeed + r(1 + numRequests) // tight: preemptions
    : maxNeed * numRequests + r(8); // roomy
  const label = `${policy} B=${budget} seed=${seed}${prefixCaching ? "" : " no-cache"}`;
  return { label, policy, config: { tokenBudget: budget, maxSeqs }, numBlocks, blockSize, requests, prefixCaching };
}

/**
 * 1-3 bad words cut from the output the request gives without them (windows of 2-3 tokens, and
 * now and then one token), so their bans fire and change what it returns.
 */
function badWordsFor(prompt: number[], options: SamplingInput, r: (n: number) => number): number[][] {
  const out = referenceRun(prompt, samplingParams(options), EOS_IDS).tokens;
  const words: number[][] = [];
  for (let w = 1 + r(3); w > 0; w--) {
    const len = r(4) === 0 ? 1 : 2 + r(2);
    if (out.length < len) continue;
    const at = r(out.length - len + 1);
    words.push(out.slice(at, at + len));
  }
  return words;
}

/** Checks one mix's outcome against the unconstrained run. */
export function checkOutcome(mix: MixSpec, result: MixResult): void {
  const blocksFor = (n: number) => Math.ceil(n / mix.blockSize);
  for (const req of mix.requests) {
    const got = result.finished.get(req.id);
    const where = `[${mix.label}] request ${req.id}`;
    if (got === undefined || got.count !== 1) throw new Error(`${where} finished ${got?.count ?? 0} times`);
    const ref = referenceRun(req.prompt, req.params, EOS_IDS);
    if (got.finishReason === "abort") {
      expect(ref.tokens.slice(0, got.tokens.length), where).toEqual(got.tokens);
      expect(req.abortAtStep, where).toBeDefined();
      continue;
    }
    const p = req.prompt.length;
    let want = ref.tokens;
    let reason: string = ref.finishReason;
    if (blocksFor(p + ref.tokens.length - 1) > mix.numBlocks) {
      // Never fits the pool: rejected up front, or cut where the next token has no KV room.
      let k = 0;
      while (blocksFor(p + k) <= mix.numBlocks) k++;
      want = ref.tokens.slice(0, k);
      reason = k === 0 ? "rejected" : "length";
    }
    expect(got.finishReason, where).toBe(reason as typeof got.finishReason);
    expect(got.tokens, where).toEqual(want);
  }
}

/** Registers the shared suite for `policy`. */
export function conformanceSuite(policy: PolicyName): void {
  for (const budget of BUDGETS) {
    test(`${MIXES_PER_BUDGET} random mixes at B=${budget}, prefix caching on and off`, () => {
      const totals = { preemptions: 0, rejections: 0, full: 0, short: 0, chunked: 0, aborts: 0, cached: 0 };
      for (let i = 0; i < MIXES_PER_BUDGET; i++) {
        const seed = budget * 100_003 + i;
        const mix = randomMix(policy, budget, seed);
        const result = runMix(mix);
        checkOutcome(mix, result);
        // A quarter of the mixes again with the cache off, and with every penalty list sent
        // whole (no penalty slots): the same tokens, the reference's.
        if (i % 4 === 0) {
          const off = randomMix(policy, budget, seed, false);
          const offResult = runMix(off);
          checkOutcome(off, offResult);
          expect(offResult.cachedTokens).toBe(0);
          const whole = { ...mix, penaltySlots: false };
          checkOutcome(whole, runMix(whole));
        }
        totals.preemptions += result.preemptions;
        totals.rejections += result.rejections;
        totals.full += result.fullPasses;
        totals.short += result.shortPasses;
        totals.chunked += result.chunkedPrompts;
        totals.cached += result.cachedTokens;
        for (const f of result.finished.values()) if (f.finishReason === "abort") totals.aborts++;
      }
      // The mixes must exercise what they claim to.
      // (SplitFuse at B=1 never holds two running sequences, so it has nothing to preempt.)
      if (!(policy === "splitfuse" && budget === 1)) expect(totals.preemptions).toBeGreaterThan(0);
      expect(totals.rejections).toBeGreaterThan(0);
      expect(totals.aborts).toBeGreaterThan(0);
      expect(totals.cached).toBeGreaterThan(0);
      if (policy === "splitfuse") {
        expect(totals.full).toBeGreaterThan(0);
        if (budget > 1) expect(totals.chunked).toBeGreaterThan(0);
      } else {
        expect(totals.chunked).toBe(0);
      }
    }, 240_000);
  }
}

/**
 * A hog: one request of S..3S samples generating 150-250 tokens each, running from step 0; at
 * step `arrival` a small request (1-8 prompt tokens, 1-8 generated) comes. B leaves room for
 * the small prompt beside S - 1 decodes (as vLLM asks B >= S), and the pool holds the hog's
 * first sample and the small request whole, but often not the hog's other samples.
 */
export function fairnessMix(policy: PolicyName, seed: number): { mix: MixSpec; small: number; arrival: number; maxTokens: number } {
  const r = rng(seed);
  const maxSeqs = pick(r, [2, 3, 4, 8]);
  const blockSize = pick(r, [1, 2, 4, 16]);
  const blocksFor = (n: number) => Math.ceil(n / blockSize);
  const hogPrompt = Array.from({ length: 1 + r(12) }, () => r(VOCAB));
  const hogTokens = 150 + r(100);
  const hogN = maxSeqs + r(2 * maxSeqs + 1);
  const requests: RequestSpec[] = [];
  for (let i = 0; i < hogN; i++) {
    const params = samplingParams({ maxTokens: hogTokens, ignoreEos: true, temperature: 0.8, seed: seed + i });
    requests.push({ id: i, arrivalStep: 0, prompt: hogPrompt, params, sampleIndex: i });
  }
  const smallPrompt = Array.from({ length: 1 + r(8) }, () => r(VOCAB));
  const maxTokens = 1 + r(8);
  const arrival = 12 + r(30); // the hog's first sample is past its prompt by then
  const small = requests.length;
  requests.push({ id: small, arrivalStep: arrival, prompt: smallPrompt, params: samplingParams({ maxTokens, ignoreEos: true, seed }) });
  const tokenBudget = maxSeqs + smallPrompt.length + r(16);
  const hogBlocks = blocksFor(hogPrompt.length + hogTokens);
  const numBlocks = hogBlocks * (1 + r(hogN)) + blocksFor(smallPrompt.length + maxTokens) + maxSeqs + 2 + r(8);
  const label = `${policy} fairness seed=${seed} S=${maxSeqs} B=${tokenBudget} n=${hogN} blocks=${numBlocks}x${blockSize}`;
  return { mix: { label, policy, config: { tokenBudget, maxSeqs }, numBlocks, blockSize, requests }, small, arrival, maxTokens };
}

/** Registers the fair-share property for `policy`. */
export function fairnessSuite(policy: PolicyName, neverSkipsDecodes: boolean): void {
  test("fair share: a small request beside a request of many long samples", () => {
    let preemptions = 0;
    for (let i = 0; i < 60; i++) {
      const { mix, small, arrival, maxTokens } = fairnessMix(policy, 7_000_003 + i);
      const result = runMix(mix);
      checkOutcome(mix, result);
      preemptions += result.preemptions;
      // First token in the pass it arrives in, however many samples the hog has or how long they run.
      expect(result.firstTokenStep.get(small), mix.label).toBe(arrival);
      // A policy that never skips a decode then finishes it one token per pass.
      if (neverSkipsDecodes) expect(result.finished.get(small)!.step, mix.label).toBe(arrival + maxTokens - 1);
    }
    expect(preemptions).toBeGreaterThan(0);
  }, 60_000);
}
