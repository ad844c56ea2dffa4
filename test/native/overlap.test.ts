// Overlapped steps on the CPU (fastgen.h fg_step_launch / fg_step_finish): the forward runs on
// the engine's pass thread while the caller computes masks, and the results are fg_step's bit
// for bit, masks in the batch or late; misuse is a typed error that changes nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { FastgenError, type StepBatch, type StepResult } from "../../src/native";
import { check, cString, lib } from "../../src/native/lib";
import { packBatch } from "../../src/native/structs";
import { buildEngine, bytesOf, makeBatch, randomTokens, randomWeights, rng, tensorShapes, tinySpec } from "./helpers";

const spec = tinySpec({ vocab_size: 70 }); // 3 mask words, the last one partly past the vocabulary
const V = spec.vocab_size, WORDS = Math.ceil(V / 32);
const weights = randomWeights(spec, 31);
const reference = buildEngine(spec, weights, { numBlocks: 128, blockSize: 4 });
const overlapped = buildEngine(spec, weights, { numBlocks: 128, blockSize: 4 });
afterAll(() => {
  reference.destroy();
  overlapped.destroy();
});

function thrown(fn: () => unknown): FastgenError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FastgenError);
    return e as FastgenError;
  }
  throw new Error("expected a FastgenError");
}

/** Random masks, each allowing a third of the vocabulary or so (never nothing). */
function randomMasks(r: () => number, n: number): Uint32Array {
  const m = new Uint32Array(n * WORDS);
  for (let k = 0; k < n; k++) {
    for (let id = 0; id < V; id++) if (r() < 0.35) m[k * WORDS + (id >> 5)]! |= 1 << (id & 31);
    m[k * WORDS]! |= 1 << k;
  }
  return m;
}

/** Every output array, bit for bit (NaN and -0 included). */
function expectSameBits(a: StepResult, b: StepResult): void {
  for (const key of ["ids", "logprobs", "topIds", "topLogprobs", "logits"] as const) {
    const x = a[key], y = b[key];
    expect(x === undefined).toBe(y === undefined);
    if (x && y) expect(Buffer.from(bytesOf(x as Float32Array)).equals(Buffer.from(bytesOf(y as Float32Array)))).toBe(true);
  }
}

/** The batch without its masks, and the masks as fg_step_finish takes them. */
function splitMasks(b: StepBatch): { launched: StepBatch; late: { rowMasks: Int32Array; masks: Uint32Array } } {
  const { rowMasks, masks, ...rest } = b;
  return { launched: rest, late: { rowMasks: rowMasks!, masks: masks! } };
}

/**
 * Three passes of one workload: prompt chunks of two sequences (scored rows, a sampled row that
 * ends a prompt), then decodes with masks, penalties, bias and seeded sampling. Pass `p` gives
 * the tokens its decodes feed from the previous pass's ids.
 */
function passes(r: () => number): ((prev: StepResult | null) => StepBatch)[] {
  const a = randomTokens(r, 11, V), b = randomTokens(r, 6, V), c = randomTokens(r, 5, V);
  return [
    () => makeBatch([
      { tokens: a.slice(0, 7), context: 0, blocks: [0, 1, 2, 3], rows: [{ at: 2, target: a[3]! }, { at: 5, target: a[6]! }], temperature: 0.8, seed: 3n },
      { tokens: b, context: 0, blocks: [4, 5], wants: true, mask: 1, temperature: 1, seed: 9n, penaltyIds: b, repetition: 1.3 },
      { tokens: c, context: 0, blocks: [6, 7], wants: true, topK: 5, temperature: 0.7, seed: 11n, bias: [[3, 2.5], [8, -1]] },
    ], { masks: randomMasks(r, 3), numLogprobs: 4, returnLogits: true }),
    (prev) => makeBatch([
      { tokens: a.slice(7), context: 7, blocks: [0, 1, 2, 3], wants: true, mask: 0, temperature: 0.9, seed: 3n, topP: 0.8 },
      { tokens: [prev!.ids[2]!], context: 6, blocks: [4, 5], wants: true, mask: 2, temperature: 1, seed: 9n, penaltyIds: [...b, prev!.ids[2]!], presence: 0.5, frequency: 0.3, repetition: 1.3 },
      { tokens: [prev!.ids[3]!], context: 5, blocks: [6, 7], wants: true, temperature: 0, bias: [[3, 2.5]] },
    ], { masks: randomMasks(r, 3), numLogprobs: 2 }),
    (prev) => makeBatch([
      { tokens: [prev!.ids[0]!], context: 11, blocks: [0, 1, 2, 3], wants: true, mask: 1, temperature: 1.2, seed: 3n, minP: 0.05 },
      { tokens: [prev!.ids[1]!], context: 7, blocks: [4, 5], wants: true, temperature: 1, seed: 9n },
      { tokens: [prev!.ids[2]!], context: 6, blocks: [6, 7], wants: true, mask: 0, temperature: 0.5, seed: 12n },
    ], { masks: randomMasks(r, 2), returnLogits: true }),
  ];
}

describe("fg_step_launch / fg_step_finish", () => {
  test("equal fg_step bit for bit: logits, ids, logprobs, top logprobs; masks late or in the batch", () => {
    for (const [seed, late] of [[1, true], [2, true], [3, false]] as const) {
      let prev: StepResult | null = null;
      for (const make of passes(rng(seed))) {
        const batch = make(prev); // decodes feed on the previous pass's ids (the same on both engines)
        const ref = reference.step(batch);
        let out: StepResult;
        if (late) {
          const { launched, late: masks } = splitMasks(batch);
          overlapped.launch(launched);
          out = overlapped.finish(masks);
        } else {
          overlapped.launch(batch);
          out = overlapped.finish();
        }
        expectSameBits(out, ref);
        prev = ref;
      }
    }
  });

  test("the caller's work between launch and finish does not disturb the pass", () => {
    const r = rng(7);
    const make = passes(r)[0]!;
    const batch = make(null);
    const ref = reference.step(batch);
    const { launched, late } = splitMasks(batch);
    overlapped.launch(launched);
    expect(overlapped.inFlight).toBe(true);
    let busy = 0; // the host's own work while the forward runs (masks, in the engine)
    for (let i = 0; i < 200_000; i++) busy += Math.sqrt(i);
    expect(busy).toBeGreaterThan(0);
    const out = overlapped.finish(late);
    expect(overlapped.inFlight).toBe(false);
    expectSameBits(out, ref);
  });
});

describe("misuse is a typed error and leaves the engine usable", () => {
  const decode = (blocks: number[]) => makeBatch([{ tokens: [5, 6, 7], context: 0, blocks, wants: true }], { returnLogits: true });

  test("finish without a launch, launch twice, fg_step while a pass is in flight", () => {
    let e = thrown(() => overlapped.finish());
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toContain("no pass in flight");

    const first = decode([20]);
    overlapped.launch(first);
    e = thrown(() => overlapped.launch(decode([21])));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toContain("a pass is in flight");
    e = thrown(() => overlapped.step(decode([22])));
    expect(e.message).toContain("a pass is in flight");
    // the first pass is untouched by the refused calls
    expectSameBits(overlapped.finish(), reference.step(decode([20])));
    expect(() => overlapped.finish()).toThrow("no pass in flight");
    expectSameBits(overlapped.step(decode([23])), reference.step(decode([23])));
  });

  test("a failed launch leaves no pass in flight: a bad batch, an injected failure", () => {
    const bad = decode([20]);
    bad.positions = Int32Array.from([0, 1, 5]);
    let e = thrown(() => overlapped.launch(bad));
    expect(e.message).toContain("positions");
    expect(overlapped.inFlight).toBe(false);
    expect(() => overlapped.finish()).toThrow("no pass in flight");

    overlapped.debugFailNextSteps(1);
    e = thrown(() => overlapped.launch(decode([24])));
    expect(e.code).toBe("internal");
    expect(e.message).toContain("injected failure");
    overlapped.launch(decode([24]));
    expectSameBits(overlapped.finish(), reference.step(decode([24])));
  });

  test("late masks with masks in the batch, or out of range: the pass still ends", () => {
    const r = rng(5);
    const withMasks = makeBatch([{ tokens: [1, 2], context: 0, blocks: [25], wants: true, mask: 0 }], { masks: randomMasks(r, 1) });
    overlapped.launch(withMasks);
    let e = thrown(() => overlapped.finish({ rowMasks: Int32Array.from([0]), masks: randomMasks(r, 1) }));
    expect(e.message).toContain("launched with masks of its own");
    expect(overlapped.inFlight).toBe(false);
    expect(() => overlapped.finish()).toThrow("no pass in flight");

    overlapped.launch(decode([26]));
    e = thrown(() => overlapped.finish({ rowMasks: Int32Array.from([1]), masks: randomMasks(r, 1) }));
    expect(e.message).toContain("late row_masks = 1");
    e = thrown(() => overlapped.finish());
    expect(e.message).toContain("no pass in flight");
    // a row-less pass takes an empty late list
    overlapped.launch(makeBatch([{ tokens: [3], context: 0, blocks: [27] }]));
    expect(overlapped.finish({ rowMasks: new Int32Array(0), masks: new Uint32Array(0) }).ids.length).toBe(0);
  });

  test("destroy with a pass in flight: NativeEngine ends it first; the raw ABI says so and frees the engine", () => {
    const e = buildEngine(spec, weights, { numBlocks: 16, blockSize: 4 });
    e.launch(decode([1, 2]));
    e.destroy();
    expect(() => e.launch(decode([1]))).toThrow("after destroy");

    // fg_engine_destroy itself, on a handle with a pass in flight
    const out = new BigUint64Array(1);
    check(lib().fg_engine_create(cString(JSON.stringify(spec)), 0, out));
    const handle = Number(out[0]) as never;
    for (const [name, shape] of tensorShapes(spec)) {
      const data = bytesOf(weights.get(name)!);
      check(lib().fg_engine_load_tensor(handle, cString(name), 0, BigInt64Array.from(shape, BigInt), shape.length, data, data.byteLength));
    }
    check(lib().fg_engine_finalize(handle, null));
    const batch = decode([1, 2]);
    const packed = packBatch(batch, V);
    check(lib().fg_step_launch(handle, packed));
    const status = lib().fg_engine_destroy(handle);
    expect(status).toBe(1); // FG_ERR_INVALID_ARGUMENT
    expect(String(lib().fg_last_error())).toContain("a pass was in flight");
    expect(batch.tokenIds.length).toBe(3); // kept alive until the pass was waited for
  });

  test("an engine destroyed while its pass runs a long prompt", () => {
    const e = buildEngine(spec, weights, { numBlocks: 64, blockSize: 4 });
    const tokens = randomTokens(rng(3), 200, V);
    e.launch(makeBatch([{ tokens, context: 0, blocks: Array.from({ length: 50 }, (_, i) => i), wants: true }]));
    e.destroy();
    expect(e.inFlight).toBe(false);
  });
});
