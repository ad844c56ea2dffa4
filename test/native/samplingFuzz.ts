/**
 * A seeded fuzz corpus for the C ABI's sampling parameters (issue #25's query of death: a
 * repetition_penalty of 1e-38 segfaulted the process). Each case is one batch of rows whose
 * floats come from the extremes a caller can send: subnormals, FLT_MAX, +-inf, NaN, -0, and
 * logits that hold them too. The contract both samplers (cpu/sampling.cpp, cuda/sampling.cu)
 * must keep: fg_sample_logits either refuses the batch with FG_ERR_INVALID_ARGUMENT, or gives
 * every sampling row an id in [0, V) — never a crash, never -1 or garbage.
 */
import { FastgenError, Status } from "../../src/native";
import type { StepBatch } from "../../src/native";
import { makeBatch, rng, type SeqChunk } from "./helpers";

const F32_MAX = 3.4028234663852886e38;
const F32_MIN_NORMAL = 1.1754943508222875e-38;
const F32_MIN_SUBNORMAL = 1.401298464324817e-45;

/** Floats from the edges of float32 and beyond. */
const EDGES = [
  0, -0, F32_MIN_SUBNORMAL, 1e-42, F32_MIN_NORMAL, 1e-37, 1e-30, 1e-6, 1e-5, 0.5, 1, 1.3, 2, 100,
  1e30, F32_MAX, Infinity, -Infinity, NaN, -F32_MIN_SUBNORMAL, -1, -2, -100, -F32_MAX,
];

/** One fuzz case: the batch and its logits ([rows * vocab]). */
export interface FuzzCase {
  batch: StepBatch;
  logits: Float32Array;
  vocab: number;
}

/** Case `index` of the corpus seeded by `seed`: 1-4 rows, each field an edge value 30% of the time. */
export function fuzzCase(seed: number, index: number, vocab: number): FuzzCase {
  const r = rng(seed * 7919 + index);
  const rows = 1 + Math.floor(r() * 4);
  const edge = () => EDGES[Math.floor(r() * EDGES.length)]!;
  const pick = (ordinary: () => number) => (r() < 0.3 ? edge() : ordinary());
  const chunks: SeqChunk[] = [];
  for (let s = 0; s < rows; s++) {
    const pen = Array.from({ length: Math.floor(r() * 12) }, () => Math.floor(r() * vocab));
    chunks.push({
      tokens: [1], context: 3 + s, blocks: [s], wants: r() < 0.9,
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
  const batch = makeBatch(chunks, { numLogprobs: r() < 0.5 ? 0 : 1 + Math.floor(r() * 5) });
  batch.penaltyPromptLens = Int32Array.from(chunks, (c) => Math.floor(r() * ((c.penaltyIds?.length ?? 0) + 1)));
  const logits = new Float32Array(rows * vocab);
  const wild = r() < 0.5; // half the cases also hold extreme logits (a model that overflowed)
  for (let i = 0; i < logits.length; i++) logits[i] = wild && r() < 0.05 ? edge() : (r() * 2 - 1) * 8;
  return { batch, logits, vocab };
}

/** The sampler's answer: the ids it drew, or the status it refused the batch with. */
export type FuzzOutcome = { ids: Int32Array } | { refused: string };

/** Runs `sample` and sorts its answer into a drawn set of ids or a refusal; any other error throws. */
export function outcome(sample: () => { sampledIds: Int32Array }): FuzzOutcome {
  try {
    return { ids: sample().sampledIds };
  } catch (e) {
    if (e instanceof FastgenError && e.status === Status.INVALID_ARGUMENT) return { refused: e.message };
    throw e;
  }
}

/** The ids of a drawn outcome that break the contract (outside [0, V) for a sampling row). */
export function badIds(c: FuzzCase, o: FuzzOutcome): string[] {
  if (!("ids" in o)) return [];
  const bad: string[] = [];
  c.batch.wantsToken.forEach((w, s) => {
    const id = o.ids[s]!;
    if (w && !(id >= 0 && id < c.vocab)) bad.push(`row ${s}: id ${id}`);
  });
  return bad;
}
