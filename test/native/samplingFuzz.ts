/**
 * A seeded fuzz corpus for the C ABI's sampling parameters (issue #25's query of death: a
 * repetition_penalty of 1e-38 segfaulted the process). Each case is one batch of rows whose
 * floats come from the extremes a caller can send: subnormals, FLT_MAX, +-inf, NaN, -0, and
 * logits that hold them too; sequences of 1-3 tokens with several sample rows, sampled or
 * scored; and allowed-token masks (random, all-zero, all-one, a single id, garbage bits past
 * the vocabulary). The contract both samplers (cpu/sampling.cpp, cuda/sampling.cu) must keep:
 * fg_sample_logits either refuses the batch with FG_ERR_INVALID_ARGUMENT, or gives every sampled
 * row an id in [0, V) that its mask allows (or 0, the everything-masked fallback) and every
 * scored row its target — never a crash, never -1 or garbage.
 */
import { FastgenError, Status } from "../../src/native";
import type { StepBatch } from "../../src/native";
import { makeBatch, rng, type RowSpec, type SeqChunk } from "./helpers";

const F32_MAX = 3.4028234663852886e38;
const F32_MIN_NORMAL = 1.1754943508222875e-38;
const F32_MIN_SUBNORMAL = 1.401298464324817e-45;

/** Floats from the edges of float32 and beyond. */
const EDGES = [
  0, -0, F32_MIN_SUBNORMAL, 1e-42, F32_MIN_NORMAL, 1e-37, 1e-30, 1e-6, 1e-5, 0.5, 1, 1.3, 2, 100,
  1e30, F32_MAX, Infinity, -Infinity, NaN, -F32_MIN_SUBNORMAL, -1, -2, -100, -F32_MAX,
];

/** One fuzz case: the batch and its logits ([numRows * vocab]). */
export interface FuzzCase {
  batch: StepBatch;
  logits: Float32Array;
  vocab: number;
}

/** Bitmasks of ceil(vocab / 32) words: random, none allowed, all, one id, junk past the vocabulary. */
function randomMasks(r: () => number, vocab: number): Uint32Array {
  const words = Math.ceil(vocab / 32);
  const n = 1 + Math.floor(r() * 3);
  const masks = new Uint32Array(n * words);
  for (let m = 0; m < n; m++) {
    const mask = masks.subarray(m * words, (m + 1) * words);
    const kind = Math.floor(r() * 5);
    if (kind === 0) for (let w = 0; w < words; w++) mask[w] = Math.floor(r() * 2 ** 32);
    else if (kind === 2) mask.fill(0xffffffff);
    else if (kind === 3) {
      const id = Math.floor(r() * vocab);
      mask[id >> 5] = 1 << (id & 31);
    } else if (kind === 4) mask[words - 1] = ~((2 ** (vocab % 32 || 32)) - 1) >>> 0; // only bits past vocab
    // kind 1: all zero
  }
  return masks;
}

/** Whether `mask` (a batch mask index, or -1) allows `id`. */
function allows(batch: StepBatch, vocab: number, mask: number, id: number): boolean {
  if (mask < 0) return true;
  const word = batch.masks![mask * Math.ceil(vocab / 32) + (id >> 5)]!;
  return ((word >>> (id & 31)) & 1) === 1;
}

/**
 * Case `index` of the corpus seeded by `seed`: 1-4 sequences of 1-3 tokens, each field an edge
 * value 30% of the time; each token a sample row half the time (a third of them scored), the
 * last one sampled 90% of the time; masks on the rows of 40% of the cases.
 */
export function fuzzCase(seed: number, index: number, vocab: number): FuzzCase {
  const r = rng(seed * 7919 + index);
  const numSeqs = 1 + Math.floor(r() * 4);
  const edge = () => EDGES[Math.floor(r() * EDGES.length)]!;
  const pick = (ordinary: () => number) => (r() < 0.3 ? edge() : ordinary());
  const masks = r() < 0.4 ? randomMasks(r, vocab) : undefined;
  const numMasks = masks ? masks.length / Math.ceil(vocab / 32) : 0;
  const maskOf = () => (masks && r() < 0.8 ? Math.floor(r() * numMasks) : -1);
  const chunks: SeqChunk[] = [];
  for (let s = 0; s < numSeqs; s++) {
    const pen = Array.from({ length: Math.floor(r() * 12) }, () => Math.floor(r() * vocab));
    const n = 1 + Math.floor(r() * 3);
    const rows: RowSpec[] = [];
    for (let at = 0; at < n - 1; at++)
      if (r() < 0.5) rows.push(r() < 0.33 ? { at, target: Math.floor(r() * vocab) } : { at, mask: maskOf() });
    chunks.push({
      tokens: Array.from({ length: n }, (_, i) => (1 + i) % vocab), context: 3 + s, blocks: [s], rows,
      wants: r() < 0.9, mask: maskOf(),
      temperature: pick(() => r() * 2),
      topP: r() < 0.5 ? 1 : pick(() => r()),
      topK: r() < 0.5 ? 0 : [-2147483648, -1, 1, 2, vocab - 1, vocab, vocab + 1, 2147483647][Math.floor(r() * 8)]!,
      minP: r() < 0.5 ? 0 : pick(() => r() * 0.2),
      seed: BigInt(Math.floor(r() * 2 ** 32)) * BigInt(1 + Math.floor(r() * 2 ** 20)),
      repetition: r() < 0.3 ? 1 : pick(() => 0.5 + r()),
      presence: r() < 0.5 ? 0 : pick(() => r() * 4 - 2),
      frequency: r() < 0.5 ? 0 : pick(() => r() * 4 - 2),
      penaltyIds: pen,
      bias: r() < 0.5 ? [] : [[Math.floor(r() * vocab), pick(() => r() * 200 - 100)]],
    });
  }
  const batch = makeBatch(chunks, { numLogprobs: r() < 0.5 ? 0 : 1 + Math.floor(r() * 5), masks });
  batch.penaltyPromptLens = Int32Array.from(chunks, (c) => Math.floor(r() * ((c.penaltyIds?.length ?? 0) + 1)));
  const logits = new Float32Array(batch.rowTokens.length * vocab);
  const wild = r() < 0.5; // half the cases also hold extreme logits (a model that overflowed)
  for (let i = 0; i < logits.length; i++) logits[i] = wild && r() < 0.05 ? edge() : (r() * 2 - 1) * 8;
  return { batch, logits, vocab };
}

/** The sampler's answer: the ids it drew, or the status it refused the batch with. */
export type FuzzOutcome = { ids: Int32Array } | { refused: string };

/** Runs `sample` and sorts its answer into a drawn set of ids or a refusal; any other error throws. */
export function outcome(sample: () => { ids: Int32Array }): FuzzOutcome {
  try {
    return { ids: sample().ids };
  } catch (e) {
    if (e instanceof FastgenError && e.status === Status.INVALID_ARGUMENT) return { refused: e.message };
    throw e;
  }
}

/**
 * The ids of a drawn outcome that break the contract: a sampled row's id outside [0, V) or not
 * allowed by its mask (0 is the everything-masked fallback), a scored row's id not its target.
 */
export function badIds(c: FuzzCase, o: FuzzOutcome): string[] {
  if (!("ids" in o)) return [];
  const bad: string[] = [];
  const { rowTargets, rowMasks } = c.batch;
  for (let row = 0; row < c.batch.rowTokens.length; row++) {
    const id = o.ids[row]!, target = rowTargets?.[row] ?? -1, mask = rowMasks?.[row] ?? -1;
    if (target >= 0) {
      if (id !== target) bad.push(`row ${row}: scored ${target}, got ${id}`);
    } else if (!(id >= 0 && id < c.vocab)) bad.push(`row ${row}: id ${id}`);
    else if (id !== 0 && !allows(c.batch, c.vocab, mask, id)) bad.push(`row ${row}: id ${id} is masked`);
  }
  return bad;
}
