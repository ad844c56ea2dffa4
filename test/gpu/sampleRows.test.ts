// The engine contract v2 on the device (issue #16 step 3), CUDA against the CPU:
//  - fg_step with several sample rows per sequence (scored prompt rows, seeded sampled rows at
//    several positions, the last token sampled) and masks: every row's logits within the bf16
//    tolerance of the CPU engine's; scored rows report their target with the CPU's logprob; the
//    device sampler's pick on its own logits equals the CPU sampler's on those same logits
//    (fg_sample_logits "cpu" fed the device's rows), masks included;
//  - decode-only steps replayed as CUDA graphs, with a different mask each step (masks live in
//    the step's metadata after every region the graph reads);
//  - fg_sample_logits on hand-made masks and many rows per sequence, vocab up to 151936: the
//    same ids, the same raw logprobs (within 1e-4), all-zero masks falling back to id 0.
import { afterAll, describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/native/modelSpec";
import { NativeEngine, sampleLogits, type Backend, type KvConfig, type StepBatch } from "../../src/native";
import { makeBatch, randomTokens, randomWeights, relErr, rng, tensorShapes, tinySpec, type RowSpec, type SeqChunk } from "../native/helpers";
import type { Weights } from "../native/reference";
import { hasGpu, roundBf16, top2, engineFor } from "./gpuHelpers";

/** Masks allowing a random ~third of the vocabulary each; mask `n` (the last) allows nothing. */
function randomMasks(r: () => number, n: number, vocab: number): Uint32Array {
  const words = Math.ceil(vocab / 32);
  const m = new Uint32Array((n + 1) * words);
  for (let i = 0; i < n * words; i++) m[i] = (Math.floor(r() * 2 ** 32) & Math.floor(r() * 2 ** 32)) >>> 0;
  return m;
}

function allows(batch: StepBatch, vocab: number, row: number, id: number): boolean {
  const m = batch.rowMasks?.[row] ?? -1;
  if (m < 0) return true;
  return ((batch.masks![m * Math.ceil(vocab / 32) + (id >> 5)]! >>> (id & 31)) & 1) === 1;
}

const engines: NativeEngine[] = [];
afterAll(() => engines.forEach((e) => e.destroy()));

describe.skipIf(!hasGpu)("sample rows and masks: cuda vs cpu", () => {
  const spec = tinySpec({ vocab_size: 1000, hidden_size: 256, intermediate_size: 512, num_heads: 8, num_kv_heads: 2, head_dim: 32, max_position_embeddings: 2048 });
  const V = spec.vocab_size;
  const w = randomWeights(spec, 41);
  for (const [k, v] of w) w.set(k, roundBf16(v));

  test("fg_step: several rows per sequence, sampled and scored, with masks", () => {
    const kv = { numBlocks: 128, blockSize: 16 };
    const cpu = engineFor("cpu", spec, w, kv), gpu = engineFor("cuda", spec, w, kv);
    engines.push(cpu, gpu);
    const r = rng(7);
    const masks = randomMasks(r, 3, V);
    const prompts = [randomTokens(r, 40, V), randomTokens(r, 23, V), randomTokens(r, 9, V)];
    // A: 40-token prompt, scored rows at every token (prompt logprobs) + sampled last, greedy
    // B: 23 tokens, sampled rows at 5 positions (speculative verification shape), seeded, masked
    // C: 9 tokens, one scored row, one masked greedy row, the last row masked with "nothing"
    const chunks: SeqChunk[] = [
      { tokens: prompts[0]!, context: 0, blocks: [0, 1, 2], rows: prompts[0]!.slice(1).map((t, at) => ({ at, target: t })), wants: true },
      { tokens: prompts[1]!, context: 0, blocks: [3, 4], rows: [10, 14, 18, 21].map((at, i) => ({ at, mask: i % 3 })), wants: true, mask: 1, temperature: 0.9, topP: 0.95, seed: 11n },
      { tokens: prompts[2]!, context: 0, blocks: [5], rows: [{ at: 2, target: prompts[2]![3]! }, { at: 5, mask: 2 }] as RowSpec[], wants: true, mask: 3 },
    ];
    const batch = makeBatch(chunks, { returnLogits: true, numLogprobs: 4, masks });
    const a = cpu.step(batch), b = gpu.step(batch);
    const rows = batch.rowTokens.length;
    expect(rows).toBe(39 + 1 + 4 + 1 + 2 + 1);
    let worst = 0, worstLp = 0;
    for (let row = 0; row < rows; row++) {
      const ref = a.logits!.subarray(row * V, (row + 1) * V), got = b.logits!.subarray(row * V, (row + 1) * V);
      worst = Math.max(worst, relErr(got, ref));
      const target = batch.rowTargets![row]!;
      if (target >= 0) {
        expect(b.ids[row]).toBe(target);
        worstLp = Math.max(worstLp, Math.abs(b.logprobs[row]! - a.logprobs[row]!));
      } else {
        const id = b.ids[row]!;
        expect(id >= 0 && id < V).toBe(true);
        if (id !== 0) expect(allows(batch, V, row, id)).toBe(true);
      }
    }
    // The device's pick on its own logits is the CPU sampler's pick on those logits.
    const onGpuLogits = sampleLogits("cpu", batch, b.logits!, V);
    expect(Array.from(b.ids)).toEqual(Array.from(onGpuLogits.ids));
    for (let i = 0; i < rows * 4; i++) if (onGpuLogits.topIds![i] !== b.topIds![i]) {
      // a top-k order may swap only at an exact tie of the device's logits
      const row = Math.floor(i / 4), x = onGpuLogits.topIds![i]!, y = b.topIds![i]!;
      expect(b.logits![row * V + x]).toBe(b.logits![row * V + y]!);
    }
    expect(b.ids[rows - 1]).toBe(0);  // C's last row: its mask allows nothing
    console.log(`sample rows: ${rows} rows, worst logits rel err ${worst.toExponential(2)}, worst scored logprob diff ${worstLp.toExponential(2)}`);
    expect(worst).toBeLessThan(2e-2);
    expect(worstLp).toBeLessThan(5e-2);
  });

  test("decode steps through CUDA graphs follow each step's masks", () => {
    const kv = { numBlocks: 64, blockSize: 16 };
    const gpu = engineFor("cuda", spec, w, kv);
    engines.push(gpu);
    const r = rng(9);
    const seqs = [0, 1, 2, 3].map((s) => ({ tokens: randomTokens(r, 5 + s, V), blocks: [4 * s, 4 * s + 1] }));
    gpu.step(makeBatch(seqs.map((s) => ({ tokens: s.tokens, context: 0, blocks: s.blocks }))));
    // 6 decode steps of one shape (the 2nd captures a graph, the rest replay it), masks changing
    for (let step = 0; step < 6; step++) {
      const allowed = [0, 1, 2, 3].map((s) => [(step * 37 + s * 101) % V, (step * 53 + s * 7 + 500) % V]);
      const masks = new Uint32Array(4 * Math.ceil(V / 32));
      allowed.forEach((ids, s) => ids.forEach((id) => (masks[s * Math.ceil(V / 32) + (id >> 5)]! |= 1 << (id & 31))));
      const batch = makeBatch(seqs.map((s, i) => ({ tokens: [s.tokens.at(-1)!], context: s.tokens.length - 1, blocks: s.blocks, wants: true, mask: i })), { masks, returnLogits: true });
      const out = gpu.step(batch);
      seqs.forEach((s, i) => {
        const row = out.logits!.subarray(i * V, (i + 1) * V);
        const [x, y] = allowed[i]! as [number, number];
        expect(out.ids[i]).toBe(row[x]! > row[y]! || (row[x] === row[y] && x < y) ? x : y);
        s.tokens.push(out.ids[i]!);
      });
      // the same step without masks picks the unmasked argmax (the graph is keyed on shape only)
      if (step === 5) {
        const free = gpu.step(makeBatch(seqs.map((s) => ({ tokens: [s.tokens.at(-1)!], context: s.tokens.length - 1, blocks: s.blocks, wants: true })), { returnLogits: true }));
        seqs.forEach((_, i) => expect(free.ids[i]).toBe(top2(free.logits!.subarray(i * V, (i + 1) * V)).best));
      }
    }
  });

  for (const vocab of [1000, 32000, 151936]) {
    test(`fg_sample_logits, vocab ${vocab}: masks and many rows per sequence, the CPU's ids and logprobs`, () => {
      const r = rng(vocab);
      let draws = 0, same = 0;
      for (let round = 0; round < 4; round++) {
        const masks = randomMasks(r, 4, vocab);
        const chunks: SeqChunk[] = [];
        for (let s = 0; s < 12; s++) {
          const n = 1 + (s % 5);
          const rows: RowSpec[] = [];
          for (let at = 0; at < n - 1; at++)
            rows.push(r() < 0.3 ? { at, target: Math.floor(r() * vocab) } : { at, mask: Math.floor(r() * 6) - 1 });
          chunks.push({
            tokens: Array.from({ length: n }, (_, i) => i + 1), context: 4 + s, blocks: [s], rows, wants: s % 7 !== 6,
            mask: Math.floor(r() * 6) - 1, temperature: [0, 0.7, 1, 1.3][s % 4], topK: [0, 40, 0, 5][s % 4], topP: [1, 0.9, 1, 0.8][(s >> 2) % 4],
            minP: s % 5 === 0 ? 0.05 : 0, seed: BigInt(round * 1000 + s), presence: s % 3 === 0 ? 0.4 : 0, penaltyIds: [1, 2, 3, s],
            bias: s % 4 === 1 ? [[Math.floor(r() * vocab), 6]] : [],
          });
        }
        const batch = makeBatch(chunks, { numLogprobs: 5, masks });
        const rowsN = batch.rowTokens.length;
        const logits = new Float32Array(rowsN * vocab).map(() => (r() * 2 - 1) * 3);
        const cpu = sampleLogits("cpu", batch, logits, vocab), gpu = sampleLogits("cuda", batch, logits, vocab);
        for (let row = 0; row < rowsN; row++) {
          draws++;
          if (cpu.ids[row] === gpu.ids[row]) same++;
          else console.log(`vocab ${vocab} round ${round} row ${row}: cpu ${cpu.ids[row]} gpu ${gpu.ids[row]} mask ${batch.rowMasks![row]} target ${batch.rowTargets![row]}`);
          const id = gpu.ids[row]!;
          if (batch.rowTargets![row]! < 0 && id !== 0) expect(allows(batch, vocab, row, id)).toBe(true);
          if (batch.rowMasks![row] === 4 && batch.rowTargets![row]! < 0) expect(id).toBe(0);  // mask 4 allows nothing
          expect(Math.abs(gpu.logprobs[row]! - cpu.logprobs[row]!)).toBeLessThan(1e-4);
          for (let k = 0; k < 5; k++) expect(gpu.topIds![row * 5 + k]).toBe(cpu.topIds![row * 5 + k]!);
        }
      }
      console.log(`masked sample rows, vocab ${vocab}: ${same}/${draws} identical`);
      expect(same).toBe(draws);
    });
  }
});
