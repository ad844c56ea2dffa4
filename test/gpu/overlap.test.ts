// Overlapped steps on the device (fastgen.h fg_step_launch / fg_step_finish): the forward pass is
// queued at launch and the rows' masks arrive at finish (meta.cu late_masks patches the packed
// rows after the queued pass). Against fg_step on a twin engine, bit for bit: prompt chunks
// with scored rows, then decode-only passes that replay CUDA graphs, masks late every pass;
// misuse errors; destroy with a pass in flight; penalty slots; tensor parallel (finish runs the
// whole step); and the engine on the demo model with grammars, overlap on and off. Skipped
// without a GPU.
import { afterAll, describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/native/modelSpec";
import { NativeEngine, cudaDeviceCount, type KvConfig, type StepBatch, type StepResult } from "../../src/native";
import { makeBatch, randomTokens, randomWeights, rng, tensorShapes, tinySpec, type SeqChunk } from "../native/helpers";
import type { Weights } from "../native/reference";
import { engineFor, hasGpu, roundBf16 } from "./gpuHelpers";
import { EngineCore } from "../../src/engine/engineCore";
import { defaultModelDir } from "../../src/model/defaultModel";
import { PERSON_SCHEMA } from "../grammar/helpers";

function randomMasks(r: () => number, n: number, vocab: number): Uint32Array {
  const words = Math.ceil(vocab / 32);
  const m = new Uint32Array(n * words);
  for (let i = 0; i < m.length; i++) m[i] = (Math.floor(r() * 2 ** 32) | Math.floor(r() * 2 ** 32)) >>> 0;
  return m;
}

function sameBits(a: StepResult, b: StepResult): void {
  for (const key of ["ids", "logprobs", "topIds", "topLogprobs", "logits"] as const) {
    const x = a[key], y = b[key];
    expect(x === undefined).toBe(y === undefined);
    if (x && y) expect(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength))).toBe(true);
  }
}

function lateOf(b: StepBatch) {
  const { rowMasks, masks, ...launched } = b;
  return { launched, late: rowMasks ? { rowMasks, masks: masks! } : undefined };
}

const engines: NativeEngine[] = [];
afterAll(() => engines.forEach((e) => e.destroy()));

const spec = tinySpec({ vocab_size: 1000, hidden_size: 256, intermediate_size: 512, num_heads: 8, num_kv_heads: 2, head_dim: 32, max_position_embeddings: 2048 });
const V = spec.vocab_size;

/** Prompt chunks (scored rows, masks), then `decodes` decode-only passes with fresh masks each. */
function run(step: (b: StepBatch) => StepResult, seed: number, decodes: number): StepResult[] {
  const r = rng(seed);
  const prompts = [randomTokens(r, 37, V), randomTokens(r, 12, V), randomTokens(r, 5, V)];
  const blocks = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]];
  const out: StepResult[] = [];
  let res = step(makeBatch([
    { tokens: prompts[0]!, context: 0, blocks: blocks[0]!, rows: prompts[0]!.slice(1, 10).map((t, at) => ({ at, target: t })), wants: true, mask: 0, temperature: 1, seed: 5n },
    { tokens: prompts[1]!, context: 0, blocks: blocks[1]!, wants: true, mask: 1, temperature: 0.7, topK: 20, seed: 6n, penaltyIds: prompts[1]!, repetition: 1.2 },
    { tokens: prompts[2]!, context: 0, blocks: blocks[2]!, wants: true, temperature: 0 },
  ], { masks: randomMasks(r, 2, V), numLogprobs: 3, returnLogits: true }));
  out.push(res);
  const ctx = prompts.map((p) => p.length);
  for (let d = 0; d < decodes; d++) {
    const last = [res.ids[res.ids.length - 3]!, res.ids[res.ids.length - 2]!, res.ids[res.ids.length - 1]!];
    const chunks: SeqChunk[] = [0, 1, 2].map((s) => ({
      tokens: [last[s]!], context: ctx[s]!, blocks: blocks[s]!, wants: true, mask: s < 2 ? (s + d) % 2 : undefined,
      temperature: s === 2 ? 0 : 1, seed: BigInt(10 + s),
    }));
    res = step(makeBatch(chunks, { masks: randomMasks(r, 2, V), numLogprobs: d % 2 ? 2 : 0 }));
    out.push(res);
    ctx.forEach((_, s) => ctx[s]!++);
  }
  return out;
}

describe.skipIf(!hasGpu)("overlapped steps on cuda", () => {
  const w = randomWeights(spec, 43);
  for (const [k, v] of w) w.set(k, roundBf16(v));
  const kv = { numBlocks: 64, blockSize: 16 };

  test("launch + late masks + finish equals fg_step bit for bit, graphs replayed", () => {
    const a = engineFor("cuda", spec, w, kv), b = engineFor("cuda", spec, w, kv);
    engines.push(a, b);
    const ref = run((batch) => a.step(batch), 3, 12);
    const ovl = run((batch) => {
      const { launched, late } = lateOf(batch);
      b.launch(launched);
      return b.finish(late);
    }, 3, 12);
    ref.forEach((r, i) => sameBits(ovl[i]!, r));
    // masks in the batch at launch: the same again
    const inBatch = run((batch) => {
      b.launch(batch);
      return b.finish();
    }, 3, 4);
    inBatch.forEach((r, i) => sameBits(r, ref[i]!));
  });

  test("misuse: typed errors; a failed launch leaves the engine usable; destroy with a pass in flight", () => {
    const e = engineFor("cuda", spec, w, kv);
    const batch = makeBatch([{ tokens: [1, 2, 3], context: 0, blocks: [0], wants: true }]);
    expect(() => e.finish()).toThrow("no pass in flight");
    e.launch(batch);
    expect(() => e.launch(batch)).toThrow("a pass is in flight");
    expect(() => e.step(batch)).toThrow("a pass is in flight");
    expect(e.finish().ids.length).toBe(1);
    const bad = makeBatch([{ tokens: [1, 2, 3], context: 0, blocks: [999], wants: true }]);
    expect(() => e.launch(bad)).toThrow("block_indices");
    e.debugFailNextSteps(1);
    expect(() => e.launch(batch)).toThrow("injected failure");
    e.launch(batch);
    expect(e.finish().ids.length).toBe(1);
    e.launch(makeBatch([{ tokens: randomTokens(rng(1), 500, V), context: 0, blocks: Array.from({ length: 32 }, (_, i) => i), wants: true }]));
    e.destroy();
  });

  test("penalty slots: lists sent in pieces equal whole lists bit for bit (the core uploads them whole)", () => {
    const a = engineFor("cuda", spec, w, kv), b = engineFor("cuda", spec, w, kv);
    engines.push(a, b);
    const r = rng(21);
    const prompts = [randomTokens(r, 20, V), randomTokens(r, 9, V)];
    const outs: number[][] = [[], []];
    const rep = [1.3, 1], presence = [0.2, 0.7];
    const held = [0, 0];
    for (let step = 0; step < 10; step++) {
      const first = step === 0;
      const chunks: SeqChunk[] = [0, 1].map((s) => ({
        tokens: first ? prompts[s]! : [outs[s]!.at(-1)!], context: first ? 0 : prompts[s]!.length + outs[s]!.length - 1,
        blocks: [10 * s, 10 * s + 1, 10 * s + 2], wants: true, temperature: 1, seed: BigInt(s + 1), repetition: rep[s]!, presence: presence[s]!,
      }));
      const lists = [0, 1].map((s) => [...(rep[s] !== 1 ? prompts[s]! : []), ...outs[s]!]);
      const wholeBatch = makeBatch(chunks, { numLogprobs: 2 });
      wholeBatch.penaltyIndptr = Int32Array.from([0, lists[0]!.length, lists[0]!.length + lists[1]!.length]);
      wholeBatch.penaltyIds = Int32Array.from(lists.flat());
      wholeBatch.penaltyPromptLens = Int32Array.from([0, 1].map((s) => (rep[s] !== 1 ? prompts[s]!.length : 0)));
      const sliced = makeBatch(chunks, { numLogprobs: 2 });
      const pieces = [0, 1].map((s) => lists[s]!.slice(held[s]!));
      sliced.penaltyIndptr = Int32Array.from([0, pieces[0]!.length, pieces[0]!.length + pieces[1]!.length]);
      sliced.penaltyIds = Int32Array.from(pieces.flat());
      sliced.penaltyPromptLens = Int32Array.from([0, 1].map((s) => Math.max(0, (rep[s] !== 1 ? prompts[s]!.length : 0) - held[s]!)));
      sliced.penaltySlots = Int32Array.from([3, 8]);
      sliced.penaltySlotKeep = Int32Array.from(held);
      const ref = a.step(wholeBatch);
      b.launch(sliced);
      const got = b.finish();
      sameBits(got, ref);
      [0, 1].forEach((s) => {
        held[s] = lists[s]!.length;
        outs[s]!.push(ref.ids[s]!);
      });
    }
  });

  test.skipIf(cudaDeviceCount() < 2)("tensor_parallel 2: launch defers, finish runs the whole step, the same as fg_step", () => {
    const tpSpec = { ...spec, tensor_parallel: 2 };
    const a = engineFor("cuda", tpSpec, w, kv), b = engineFor("cuda", tpSpec, w, kv);
    engines.push(a, b);
    const ref = run((batch) => a.step(batch), 4, 3);
    const ovl = run((batch) => {
      const { launched, late } = lateOf(batch);
      b.launch(launched);
      return b.finish(late);
    }, 4, 3);
    ref.forEach((r, i) => sameBits(ovl[i]!, r));
  });

  test("the engine on the demo model: grammar outputs the same with overlap on and off", async () => {
    const sampling = { maxTokens: 80, temperature: 1, seed: 3, n: 3, structured: { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) } };
    const outs: number[][][] = [];
    for (const overlapSteps of [false, true]) {
      const core = await EngineCore.load(defaultModelDir(), { backend: "cuda", kvBlocks: 256, overlapSteps });
      try {
        const ids: number[][] = [[], [], []];
        await core.addRequestAsync("0", core.tokenizer.encode("Person:", { addSpecialTokens: true }), sampling);
        while (core.hasWork()) {
          core.launchStep();
          await core.prepareMasks();
          for (const it of core.finishStep()) for (const d of it.deltas) ids[d.index]!.push(...d.tokenIds);
        }
        outs.push(ids);
      } finally {
        core.destroy();
      }
    }
    expect(outs[1]).toEqual(outs[0]!);
  });
});
