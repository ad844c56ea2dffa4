// The distribution of speculative verification (issue #22, Proof): through the real path —
// StepBatchBuilder's k + 1 verification rows, the CPU backend's sampler (fg_sample_logits: each
// draw seeded by (seed, position), penalties per row) and the stepper's acceptance (applyStep) —
// N sequences that differ only in their seed verify a draft against a known target: the test's
// "model" gives row j fixed logits, the target's next-token distribution after the drafts before
// it. Chi-square against the distribution the sampler's rules define (penalties, temperature,
// top-k, softmax), on a fixed seed set: deterministic, and the thresholds sit at p = 1e-4.
//
// With a proposal that is one token x (prompt lookup, a greedy or seeded draft model), accepting
// while the row's draw equals x is rejection sampling with q = [x]: x is kept with probability
// min(1, p(x) / q(x)) = p(x), and a rejected row's draw is p conditioned on not x, which is the
// residual max(p - q, 0) normalized. So each output token is distributed as the target's:
//   t0 ~ p0;   t0 | rejected ~ p0 without x;   t1 | d0 accepted ~ p1 (its penalties counting d0)
// A draft SAMPLED from its own q leaves that unchanged (the rows never look at q): outputs stay
// the target's, while acceptance is sum_x q(x) p(x) rather than rejection sampling's
// sum_x min(p(x), q(x)). FastGen keeps accept-while-equal on purpose: it is what makes outputs
// with and without speculation identical token for token under a seed.
import { describe, expect, test } from "bun:test";
import { StepBatchBuilder } from "../../src/engine/batch";
import { KvCacheManager } from "../../src/engine/kvCache/kvCacheManager";
import { SequenceQueues } from "../../src/engine/queues";
import type { Plan, PlanEntry } from "../../src/engine/scheduler";
import type { SamplingInput } from "../../src/engine/samplingParams";
import { samplingParams } from "../../src/engine/samplingParams";
import { Sequence } from "../../src/engine/sequence";
import { applyStep } from "../../src/engine/stepper";
import { sampleLogits } from "../../src/native";
import { rng } from "./conformance";

const V = 12;
const N = 20_000;
const PROMPT = [3];
const OUTPUT = 5; // each sequence has generated this one token; its draft follows it
// The model: row j's logits (the same for every sequence).
const LOGITS = [
  [1.2, 0.3, 2.0, -0.5, 0.9, 1.6, 0.0, -1.0, 0.4, 1.1, -0.2, 0.7],
  [0.5, 1.9, 1.8, 1.4, 0.2, 0.8, 1.7, -0.8, 0.6, 0.1, 1.0, -1.2],
  [0.9, 1.6, 1.3, 0.6, 1.8, 0.2, -0.6, 1.5, 0.3, 1.1, 0.0, 0.7],
].map((r) => Float32Array.from(r));

type Params = Pick<SamplingInput, "temperature" | "topK" | "presencePenalty" | "frequencyPenalty" | "repetitionPenalty">;

/** The sampler's target distribution of a row: penalties (prompt ids count for repetition only), / T, top-k, softmax. */
function target(logits: Float32Array, p: Params, outputs: number[]): number[] {
  const z = Array.from(logits);
  const rep = p.repetitionPenalty ?? 1, presence = p.presencePenalty ?? 0, frequency = p.frequencyPenalty ?? 0;
  const counts = new Map<number, number>();
  if (rep !== 1) for (const id of PROMPT) counts.set(id, counts.get(id) ?? 0);
  for (const id of outputs) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, c] of counts) {
    if (rep !== 1) z[id] = z[id]! > 0 ? z[id]! / rep : z[id]! * rep;
    if (c > 0) z[id] = z[id]! - presence - frequency * c;
  }
  const t = p.temperature ?? 1;
  const scaled = z.map((x) => x / t);
  const order = scaled.map((_, i) => i).sort((a, b) => scaled[b]! - scaled[a]! || a - b);
  const keep = new Set(order.slice(0, p.topK && p.topK > 0 ? p.topK : V));
  const mx = Math.max(...scaled);
  const e = scaled.map((x, i) => (keep.has(i) ? Math.exp(x - mx) : 0));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** Runs one verification pass of N sequences (seeds base..base+N-1); returns each one's new tokens. */
function verify(params: Params, drafts: number[][], seedBase: number): number[][] {
  const k = drafts[0]!.length;
  const blocks = new KvCacheManager(N, 16, false);
  const queues = new SequenceQueues();
  const entries: PlanEntry[] = [];
  for (let i = 0; i < N; i++) {
    const seq = new Sequence(i, i, PROMPT, samplingParams({ maxTokens: 100, ignoreEos: true, seed: seedBase + i, ...params }));
    seq.appendOutput(OUTPUT);
    seq.numComputedTokens = seq.numTokens - 1;
    blocks.allocate(i, seq.numTokens + k);
    queues.add(seq);
    entries.push({ seq, contextLen: seq.numTokens - 1, numTokens: 1 + k, wantsToken: true, newBlocks: 0, draft: Int32Array.from(drafts[i]!) });
  }
  const plan: Plan = { policy: "splitfuse", entries, numTokens: N * (1 + k), preempted: [], admitted: [], rejected: [], numFreeBlocksAfter: 0 };
  const batch = new StepBatchBuilder([], null, null).build(plan, blocks);
  // each row reads its model logits: row j of every sequence gets LOGITS[j]
  const logits = new Float32Array(N * (k + 1) * V);
  for (let r = 0; r < N * (k + 1); r++) logits.set(LOGITS[r % (k + 1)]!, r * V);
  const sampled = sampleLogits("cpu", batch, logits, V);
  const out = entries.map(() => [] as number[]);
  for (const ev of applyStep(plan, { rowIndptr: batch.rowIndptr, ids: sampled.ids }, { queues, blocks, stop: { eosTokenIds: [] } })) out[ev.seq.id]!.push(ev.tokenId);
  return out;
}

/** Pearson's statistic of `observed` against expected counts; cells under 5 expected are pooled. */
function chiSquare(observed: number[], expected: number[]): { stat: number; df: number } {
  let stat = 0, df = -1, poolO = 0, poolE = 0;
  observed.forEach((o, i) => {
    const e = expected[i]!;
    if (e === 0) {
      expect(o).toBe(0); // an id the filters drop is never drawn
      return;
    }
    if (e < 5) {
      poolO += o;
      poolE += e;
      return;
    }
    stat += (o - e) ** 2 / e;
    df++;
  });
  if (poolE > 0) {
    stat += (poolO - poolE) ** 2 / poolE;
    df++;
  }
  return { stat, df };
}

/** The chi-square quantile at 1 - 1e-4 (Wilson–Hilferty; within 2% for df >= 3). */
function critical(df: number): number {
  const z = 3.719;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

function histogram(tokens: number[]): number[] {
  const h = new Array<number>(V).fill(0);
  for (const t of tokens) h[t]!++;
  return h;
}

/** Expects `tokens` drawn from `p` (the sum of per-draw distributions when an array of them). */
function expectDrawnFrom(tokens: number[], p: number[] | number[][], label: string): number {
  const expected = new Array<number>(V).fill(0);
  if (typeof p[0] === "number") (p as number[]).forEach((x, i) => (expected[i] = x * tokens.length));
  else for (const q of p as number[][]) q.forEach((x, i) => (expected[i]! += x));
  const { stat, df } = chiSquare(histogram(tokens), expected);
  expect({ label, stat, ok: stat < critical(df) }).toEqual({ label, stat, ok: true });
  return stat;
}

/** p without `x`, renormalized: the residual max(p - [x], 0). */
const without = (p: number[], x: number) => p.map((v, i) => (i === x ? 0 : v / (1 - p[x]!)));

/** Binomial-type count `n` of independent events with probabilities `ps`: within 4.5 sigma. */
function expectCount(n: number, ps: number[], label: string): void {
  const mean = ps.reduce((a, b) => a + b, 0), sd = Math.sqrt(ps.reduce((a, b) => a + b * (1 - b), 0));
  expect({ label, z: Math.abs(n - mean) / sd < 4.5 }).toEqual({ label, z: true });
}

describe("verification draws the target's distribution", () => {
  const scenarios: [string, Params][] = [
    ["temperature 1", { temperature: 1 }],
    ["temperature 0.8, top-k 8, presence 0.7 + frequency 0.4 + repetition 1.2", { temperature: 0.8, topK: 8, presencePenalty: 0.7, frequencyPenalty: 0.4, repetitionPenalty: 1.2 }],
  ];
  for (const [name, params] of scenarios) {
    test(`a deterministic draft of 2 tokens, ${name}`, () => {
      const p0 = target(LOGITS[0]!, params, [OUTPUT]);
      // the drafts a good proposer makes: likely tokens (d1 after d0)
      const d0 = p0.indexOf(Math.max(...p0));
      const p1 = target(LOGITS[1]!, params, [OUTPUT, d0]);
      const d1 = p1.indexOf(Math.max(...p1));
      const p2 = target(LOGITS[2]!, params, [OUTPUT, d0, d1]);
      const out = verify(params, Array.from({ length: N }, () => [d0, d1]), 1);
      const t0 = out.map((o) => o[0]!);
      expectDrawnFrom(t0, p0, "t0 ~ p0");
      expectCount(t0.filter((t) => t === d0).length, new Array(N).fill(p0[d0]), "d0 accepted with probability p0(d0)");
      expectDrawnFrom(t0.filter((t) => t !== d0), without(p0, d0), "t0 | rejected ~ residual");
      const after0 = out.filter((o) => o[0] === d0);
      expectDrawnFrom(after0.map((o) => o[1]!), p1, "t1 | d0 accepted ~ p1");
      expectDrawnFrom(after0.filter((o) => o[1] !== d1).map((o) => o[1]!), without(p1, d1), "t1 | d1 rejected ~ residual");
      const after1 = out.filter((o) => o[0] === d0 && o[1] === d1);
      expectDrawnFrom(after1.map((o) => o[2]!), p2, "bonus t2 | both accepted ~ p2");
      for (const o of out) expect(o.length).toBe(o[0] !== d0 ? 1 : o[1] !== d1 ? 2 : 3);
      if (params.presencePenalty) {
        // the test can tell: row 1 penalized as if d0 had not been generated is rejected outright
        const wrong = target(LOGITS[1]!, params, [OUTPUT]);
        const { stat, df } = chiSquare(histogram(after0.map((o) => o[1]!)), wrong.map((x) => x * after0.length));
        expect(stat).toBeGreaterThan(10 * critical(df));
      }
    });
  }

  test("a draft sampled from its own q (k = 1), presence 0.5: outputs still ~ p, acceptance sum q p", () => {
    const params: Params = { temperature: 1, presencePenalty: 0.5 };
    const q = [0.3, 0.02, 0.05, 0.1, 0.03, 0.2, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05];
    const r = rng(2024);
    const pick = () => {
      let u = r(1_000_000) / 1_000_000;
      for (let i = 0; i < V; i++) if ((u -= q[i]!) < 0) return i;
      return V - 1;
    };
    const drafts = Array.from({ length: N }, () => [pick()]);
    const out = verify(params, drafts, 500_000);
    const p0 = target(LOGITS[0]!, params, [OUTPUT]);
    expectDrawnFrom(out.map((o) => o[0]!), p0, "t0 ~ p0 whatever the draft");
    const accepted = out.map((o, i) => o[0] === drafts[i]![0]);
    expectCount(accepted.filter(Boolean).length, drafts.map((d) => p0[d[0]!]!), "accepted with probability p0(draft)");
    // the bonus row after each accepted draft x: p1 with x counted as generated
    const bonus = out.filter((_, i) => accepted[i]);
    expectDrawnFrom(bonus.map((o) => o[1]!), drafts.filter((_, i) => accepted[i]).map((d) => target(LOGITS[1]!, params, [OUTPUT, d[0]!])), "t1 | accepted ~ p1(. | x)");
  });
});
