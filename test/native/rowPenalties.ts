/**
 * Per-row penalties of speculative verification (fastgen.h, fg_batch "Penalties"), on one
 * backend's sampler through fg_sample_logits. A sequence verifying k drafts has k + 1 sampled
 * rows at its tokens | t | d0 .. d(k-1) |; row j must draw exactly what one row alone draws at the
 * same position, on the same logits, with d0 .. d(j-1) appended to its penalty list as outputs:
 * the list decoding them one by one would hold. Shared by the CPU test (test/native) and the
 * device's (test/gpu).
 */
import { sampleLogits, type Backend, type StepResult } from "../../src/native";
import { makeBatch, rng, type SeqChunk } from "./helpers";

/** One verification: a sequence's list, drafts and sampling parameters, and its rows' logits. */
export interface VerifyCase {
  /** The penalty list: prompt ids (repetition only), then outputs; t is its last output. */
  promptIds: number[];
  outputIds: number[];
  drafts: number[];
  /** A scored row before the sampled ones (prompt logprobs): the first SAMPLED row starts the drafts. */
  scoredFirst: boolean;
  temperature: number;
  topK: number;
  topP: number;
  seed: bigint;
  presence: number;
  frequency: number;
  repetition: number;
  /** [k + 1, vocab] the logits of rows 0..k. */
  logits: Float32Array;
}

/**
 * Random cases over `vocab`: k = 1..6, every penalty kind alone and together, greedy and seeded
 * (top-k, top-p). Drafts are each row's best logit, as a good proposer's would be, so penalizing
 * them (or not) changes the later rows' picks.
 */
export function verifyCases(vocab: number, seed: number, n: number): VerifyCase[] {
  const r = rng(seed);
  const int = (m: number) => Math.floor(r() * m);
  const kinds = [[0.8, 0, 1], [0, 0.6, 1], [0, 0, 1.5], [0.5, 0.4, 1.3], [-0.5, 0, 0.7]] as const;
  return Array.from({ length: n }, (_, i) => {
    const k = 1 + int(6);
    const logits = Float32Array.from({ length: (k + 1) * vocab }, () => (r() * 2 - 1) * 3);
    const drafts = Array.from({ length: k }, (_, j) => {
      const row = logits.subarray(j * vocab, (j + 1) * vocab);
      let best = 0;
      for (let v = 1; v < vocab; v++) if (row[v]! > row[best]!) best = v;
      // later rows like the same ids: drafts that repeat are what frequency / presence punish
      for (let jj = j + 1; jj <= k; jj++) logits[jj * vocab + best] = logits[jj * vocab + best]! + 1.5;
      return best;
    });
    const [presence, frequency, repetition] = kinds[i % kinds.length]!;
    const greedy = i % 3 === 0;
    return {
      promptIds: Array.from({ length: 1 + int(5) }, () => int(vocab)),
      outputIds: Array.from({ length: 1 + int(5) }, () => int(vocab)),
      drafts, scoredFirst: i % 4 === 1,
      temperature: greedy ? 0 : 0.7 + r(), topK: i % 5 === 2 ? 20 : 0, topP: i % 5 === 3 ? 0.9 : 1,
      seed: BigInt(1000 + i), presence, frequency, repetition, logits,
    };
  });
}

function chunkOf(c: VerifyCase, tokens: number[], ctx: number, block: number, penaltyIds: number[], rows: SeqChunk["rows"]): SeqChunk {
  return {
    tokens, context: ctx, blocks: [block], rows, wants: true, temperature: c.temperature, topK: c.topK, topP: c.topP,
    seed: c.seed, presence: c.presence, frequency: c.frequency, repetition: c.repetition, penaltyIds,
  };
}

/** The penalty list as the batch sends it: prompt ids only with a repetition penalty. */
const listOf = (c: VerifyCase) => ({ ids: [...(c.repetition !== 1 ? c.promptIds : []), ...c.outputIds], promptLen: c.repetition !== 1 ? c.promptIds.length : 0 });

export interface RowPenaltyRun {
  /** Each case's rows 0..k in one batch (the verification), and each row alone. */
  verified: StepResult;
  alone: StepResult;
  /** Where the rows of each case start in verified (a scored row first, when it has one). */
  firstRow: number[];
  /** Rows whose alone draw with the list WITHOUT the drafts differs: the drafts mattered there. */
  draftsMattered: number;
  rows: number;
}

/** Appends `xs` to `out` (a spread of a 152K-entry vocabulary row overflows the call stack). */
function append(out: number[], xs: Float32Array): void {
  for (let i = 0; i < xs.length; i++) out.push(xs[i]!);
}

/** Runs `cases` on `backend`: every verification in one batch, every row alone in another. */
export function runRowPenalties(backend: Backend, vocab: number, cases: VerifyCase[]): RowPenaltyRun {
  const ver: SeqChunk[] = [], alone: SeqChunk[] = [], plain: SeqChunk[] = [];
  const verLogits: number[] = [], aloneLogits: number[] = [];
  const firstRow: number[] = [];
  const promptLens: number[] = [], aloneLens: number[] = [];
  let rows = 0;
  let block = 0;  // every chunk its own block: two chunks of a batch may not write one
  cases.forEach((c) => {
    const k = c.drafts.length;
    const list = listOf(c);
    const t = c.outputIds[c.outputIds.length - 1]!;
    const ctx = c.promptIds.length + c.outputIds.length - 1;
    // the scored row reads a token before t (a chunk whose prompt logprobs are still wanted)
    const head = c.scoredFirst ? [c.promptIds[0] ?? 1] : [];
    const sampledAt = Array.from({ length: k }, (_, j) => ({ at: head.length + j }));
    const scored = c.scoredFirst ? [{ at: 0, target: t }] : [];
    firstRow.push(rows);
    ver.push(chunkOf(c, [...head, t, ...c.drafts], ctx - head.length, block++, list.ids, [...scored, ...sampledAt]));
    promptLens.push(list.promptLen);
    if (c.scoredFirst) append(verLogits, c.logits.subarray(0, vocab));  // the scored row's logits: any
    append(verLogits, c.logits);
    rows += scored.length + k + 1;
    for (let j = 0; j <= k; j++) {
      const before = c.drafts.slice(0, j);
      alone.push(chunkOf(c, [t, ...before], ctx, block, [...list.ids, ...before], []));
      plain.push(chunkOf(c, [t, ...before], ctx, block++, list.ids, []));
      aloneLens.push(list.promptLen);
      append(aloneLogits, c.logits.subarray(j * vocab, (j + 1) * vocab));
    }
  });
  const vb = makeBatch(ver, { numLogprobs: 2 });
  vb.penaltyPromptLens = Int32Array.from(promptLens);
  const ab = makeBatch(alone, { numLogprobs: 2 });
  ab.penaltyPromptLens = Int32Array.from(aloneLens);
  const pb = makeBatch(plain);
  pb.penaltyPromptLens = Int32Array.from(aloneLens);
  const aloneOut = sampleLogits(backend, ab, Float32Array.from(aloneLogits), vocab);
  const plainOut = sampleLogits(backend, pb, Float32Array.from(aloneLogits), vocab);
  let draftsMattered = 0;
  for (let i = 0; i < aloneOut.ids.length; i++) if (aloneOut.ids[i] !== plainOut.ids[i]) draftsMattered++;
  return { verified: sampleLogits(backend, vb, Float32Array.from(verLogits), vocab), alone: aloneOut, firstRow, draftsMattered, rows };
}

/** Row j of each verification against row j alone: [verified id, alone id] pairs that differ. */
export function mismatches(run: RowPenaltyRun, cases: VerifyCase[]): string[] {
  const out: string[] = [];
  let a = 0;
  cases.forEach((c, i) => {
    const first = run.firstRow[i]! + (c.scoredFirst ? 1 : 0);
    for (let j = 0; j <= c.drafts.length; j++, a++) {
      const v = run.verified.ids[first + j]!, w = run.alone.ids[a]!;
      const lv = run.verified.logprobs[first + j]!, lw = run.alone.logprobs[a]!;
      if (v !== w || !Object.is(lv, lw)) out.push(`case ${i} row ${j}: verified ${v} (${lv}), alone ${w} (${lw})`);
    }
  });
  return out;
}
