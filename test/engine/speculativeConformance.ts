/**
 * Speculative decoding over the shared conformance mixes: the same random request mixes as
 * conformance.ts (every policy, budgets 1/7/64/512, pools tight enough to preempt and reject,
 * prefix caching on, greedy and seeded sampling at 0.8, stop ids, EOS, min_tokens, logit bias,
 * presence / frequency / repetition penalties, bad_words, aborts, n > 1), with drafts verified in
 * the passes. Every request must return the unconstrained run's tokens, exactly as without
 * speculation, and runMix checks each step that rolled-back KV is right and never cached under a
 * wrong prefix, and that every block comes back. Penalized and bad_words requests speculate too:
 * the fake model counts each row's drafts into its penalties as the library does, and honours
 * the per-row bad_words masks, so a row penalized or banned as its first row would be changes
 * the tokens.
 *
 * Two proposers: an oracle that proposes the reference continuation with a token corrupted at a
 * random place half the time (so acceptance runs from none to all k, and stops fall inside
 * accepted drafts), and prompt lookup with n down to 1 (frequent, mostly wrong proposals).
 */
import { expect, test } from "bun:test";
import type { PolicyName } from "../../src/engine/scheduler";
import { speculativeConfig } from "../../src/engine/speculative/config";
import { NgramProposer } from "../../src/engine/speculative/ngram";
import type { ProposalRequest, Proposer } from "../../src/engine/speculative/proposer";
import { BUDGETS, checkOutcome, randomMix, rng } from "./conformance";
import { VOCAB } from "./fakeModel";
import { EOS_IDS, runMix } from "./harness";
import type { MixSpec } from "./harness";
import { referenceRun } from "./reference";

const MIXES = Number(process.env.FASTGEN_SPEC_MIXES ?? 250);

/** Proposes what the reference run generates next, corrupted at a random place half the time. */
export class OracleProposer implements Proposer {
  readonly method = "oracle";
  private readonly refs = new Map<number, number[]>();
  private readonly r: (n: number) => number;

  constructor(private readonly mix: MixSpec, seed: number) {
    this.r = rng(seed);
  }

  propose(requests: readonly ProposalRequest[]): Int32Array[] {
    return requests.map(({ seq, maxTokens }) => {
      let ref = this.refs.get(seq.id);
      if (ref === undefined) {
        const q = this.mix.requests.find((x) => x.id === seq.id)!;
        ref = referenceRun(q.prompt, q.params, EOS_IDS).tokens;
        this.refs.set(seq.id, ref);
      }
      const out = seq.numOutputTokens;
      const d = Int32Array.from(ref.slice(out, out + 1 + this.r(maxTokens)));
      if (d.length > 0 && this.r(2) === 0) {
        const j = this.r(d.length);
        d[j] = (d[j]! + 1 + this.r(VOCAB - 1)) % VOCAB;
      }
      return d;
    });
  }
}

export function speculativeMix(policy: PolicyName, budget: number, seed: number, proposer: "oracle" | "ngram"): MixSpec {
  const mix = randomMix(policy, budget, seed);
  const r = rng(seed ^ 0x5bd1e995);
  const config = speculativeConfig({
    method: "ngram",
    numSpeculativeTokens: 1 + r(6),
    promptLookupMin: 1,
    promptLookupMax: 1 + r(3),
    disableByBatchSize: [2, 4, 1000][r(3)]!,
    autoDisable: false, // every eligible pass drafts: the mix, not a timing, decides
  });
  const p = proposer === "oracle" ? new OracleProposer(mix, seed) : new NgramProposer(config.promptLookupMin, config.promptLookupMax);
  return { ...mix, label: `${mix.label} spec=${proposer} k=${config.numSpeculativeTokens}`, speculation: { config, proposer: p } };
}

/** Registers the speculative conformance tests for `policy`. */
export function speculativeSuite(policy: PolicyName): void {
  for (const budget of BUDGETS) {
    test(`${MIXES} random mixes at B=${budget} with drafts: the tokens of the run without them`, () => {
      const totals = { drafts: 0, accepted: 0, passes: 0, preemptions: 0, penalized: 0, badWords: 0, maskedRows: 0 };
      for (let i = 0; i < MIXES; i++) {
        const seed = budget * 100_003 + i;
        const mix = speculativeMix(policy, budget, seed, i % 3 === 2 ? "ngram" : "oracle");
        const result = runMix(mix);
        checkOutcome(mix, result);
        totals.drafts += result.draftTokens;
        totals.accepted += result.acceptedTokens;
        totals.passes += result.draftPasses;
        totals.preemptions += result.preemptions;
        totals.penalized += result.penalizedAccepted;
        totals.badWords += result.badWordsAccepted;
        totals.maskedRows += result.maskedRows;
      }
      if (budget === 1) {
        expect(totals.passes).toBe(0); // a decode fills the whole budget: drafts never fit
      } else {
        expect(totals.passes).toBeGreaterThan(0);
        expect(totals.accepted).toBeGreaterThan(0);
        expect(totals.accepted).toBeLessThan(totals.drafts);
        // penalized and bad_words requests had drafts accepted, and rows banned by their masks
        expect(totals.penalized).toBeGreaterThan(0);
        expect(totals.badWords).toBeGreaterThan(0);
        expect(totals.maskedRows).toBeGreaterThan(0);
      }
      if (!(policy === "splitfuse" && budget === 1)) expect(totals.preemptions).toBeGreaterThan(0);
    }, 240_000);
  }
}
