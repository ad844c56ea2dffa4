// Penalty slots on the CPU (fg_batch penalty_slots): a sequence's penalty list kept in the engine
// and sent in pieces samples exactly as the whole list sent every pass (ids, logprobs, logits bit
// for bit), through fg_step and launch/finish; keep 0 empties a slot handed on, keep < held cuts
// it; bad slots are refused before anything changes.
import { afterAll, describe, expect, test } from "bun:test";
import { FastgenError, sampleLogits, type StepBatch, type StepResult } from "../../src/native";
import { buildEngine, bytesOf, makeBatch, randomTokens, randomWeights, rng, tinySpec } from "./helpers";

const spec = tinySpec({ vocab_size: 50 }); // a small vocabulary: penalties change many draws
const V = spec.vocab_size;
const weights = randomWeights(spec, 23);
const whole = buildEngine(spec, weights, { numBlocks: 64, blockSize: 4 });
const slotted = buildEngine(spec, weights, { numBlocks: 64, blockSize: 4 });
afterAll(() => {
  whole.destroy();
  slotted.destroy();
});

function sameBits(a: StepResult, b: StepResult): void {
  for (const key of ["ids", "logprobs", "topIds", "topLogprobs", "logits"] as const) {
    const x = a[key], y = b[key];
    expect(x === undefined).toBe(y === undefined);
    if (x && y) expect(Buffer.from(bytesOf(x as Float32Array)).equals(Buffer.from(bytesOf(y as Float32Array)))).toBe(true);
  }
}

interface Seq {
  prompt: number[];
  out: number[];
  blocks: number[];
  rep: number;
  presence: number;
  frequency: number;
  seed: bigint;
  slot: number;
  held: number; // ids the slot holds
}

/** The whole list of a sequence (prompt ids only with a repetition penalty), and where it starts. */
function listOf(s: Seq): { ids: number[]; promptLen: number } {
  const prompt = s.rep !== 1 ? s.prompt : [];
  return { ids: [...prompt, ...s.out], promptLen: prompt.length };
}

/**
 * The pass of the sequences' next tokens (the prompt, or the last `feed` outputs): whole lists,
 * or the pieces their slots lack.
 */
function pass(seqs: Seq[], slots: boolean, first: boolean, feed = 1): StepBatch {
  const b = makeBatch(seqs.map((s) => ({
    tokens: first ? s.prompt : s.out.slice(-feed), context: first ? 0 : s.prompt.length + s.out.length - feed,
    blocks: s.blocks, wants: true, temperature: 1, seed: s.seed, repetition: s.rep, presence: s.presence, frequency: s.frequency,
  })), { numLogprobs: 3, returnLogits: true });
  const indptr = [0], ids: number[] = [], promptLens: number[] = [], keep: number[] = [];
  for (const s of seqs) {
    const l = listOf(s);
    const from = slots ? s.held : 0;
    ids.push(...l.ids.slice(from));
    indptr.push(ids.length);
    promptLens.push(Math.max(0, l.promptLen - from));
    keep.push(s.held);
  }
  b.penaltyIndptr = Int32Array.from(indptr);
  b.penaltyIds = Int32Array.from(ids);
  b.penaltyPromptLens = Int32Array.from(promptLens);
  if (slots) {
    b.penaltySlots = Int32Array.from(seqs, (s) => s.slot);
    b.penaltySlotKeep = Int32Array.from(keep);
  }
  return b;
}

describe("penalty slots", () => {
  test("lists sent in pieces equal whole lists bit for bit, fg_step and launch/finish, slots reused", () => {
    const r = rng(11);
    const mk = (i: number, slot: number, rep: number, presence: number, frequency: number): Seq => ({
      prompt: randomTokens(r, 3 + i, V), out: [], blocks: [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3], rep, presence, frequency,
      seed: BigInt(100 + i), slot, held: 0,
    });
    // repetition (prompt ids count), presence + frequency (outputs only), all three
    let seqs = [mk(0, 5, 1.4, 0, 0), mk(1, 0, 1, 0.8, 0.6), mk(2, 9, 1.2, 0.5, 0.5)];
    for (let step = 0; step < 12; step++) {
      if (step === 6) {
        // sequence 1 ends; a new one takes its slot (keep 0 empties it) at other blocks
        seqs = [seqs[0]!, mk(3, 0, 1.3, 0.2, 0), seqs[2]!];
      }
      const fresh = seqs.map((s) => s.out.length === 0);
      const first = fresh.every(Boolean);
      if (!first && fresh.some(Boolean)) {
        // the newcomer's prompt goes alone (passes are all-prompt or all-decode here)
        const n = seqs.find((s) => s.out.length === 0)!;
        const a = whole.step(pass([n], false, true)), b = slotted.step(pass([n], true, true));
        sameBits(b, a);
        n.held = listOf(n).ids.length;
        n.out.push(a.ids[0]!);
        continue;
      }
      const a = whole.step(pass(seqs, false, first));
      const batch = pass(seqs, true, first);
      let b: StepResult;
      if (step % 2) b = slotted.step(batch);
      else {
        slotted.launch(batch);
        b = slotted.finish();
      }
      sameBits(b, a);
      seqs.forEach((s, i) => {
        s.held = listOf(s).ids.length;
        s.out.push(a.ids[i]!);
      });
    }
  });

  test("keep < held cuts the slot (a sequence that rolled back)", () => {
    const s: Seq = { prompt: [3, 4, 5, 6], out: [], blocks: [40, 41, 42], rep: 1.5, presence: 0.4, frequency: 0.3, seed: 7n, slot: 30, held: 0 };
    const a0 = whole.step(pass([s], false, true));
    sameBits(slotted.step(pass([s], true, true)), a0);
    s.held = 4;
    s.out.push(a0.ids[0]!, 7, 8);
    // the slot holds 4 ids; say it had been sent 7 and rolled back to 5: keep 5 > 4 is refused
    const bad = pass([s], true, false, 3);
    bad.penaltySlotKeep = Int32Array.from([6]);
    expect(() => slotted.step(bad)).toThrow("penalty_slot_keep = 6, slot 30 holds 4 ids");
    // cut to 2 and resend the rest: the same as the whole list
    s.held = 2;
    sameBits(slotted.step(pass([s], true, false, 3)), whole.step(pass([s], false, false, 3)));
  });

  test("bad slots are refused before anything changes", () => {
    const s: Seq = { prompt: [1, 2], out: [9], blocks: [50], rep: 1.2, presence: 0, frequency: 0, seed: 1n, slot: 40, held: 0 };
    const t: Seq = { ...s, blocks: [51], slot: 40 };
    const thrown = (b: StepBatch) => {
      try {
        slotted.step(b);
      } catch (e) {
        expect(e).toBeInstanceOf(FastgenError);
        expect((e as FastgenError).code).toBe("invalid_argument");
        return (e as FastgenError).message;
      }
      throw new Error("expected a FastgenError");
    };
    expect(thrown(pass([s, t], true, true))).toContain("two sequences of the batch use penalty slot 40");
    expect(thrown(pass([{ ...s, slot: 1 << 20 }], true, true))).toContain("is not -1 or in [0, 1048576)");
    const noKeep = pass([s], true, true);
    delete noKeep.penaltySlotKeep;
    noKeep.penaltySlots = Int32Array.from([40]);
    expect(() => slotted.step(noKeep)).toThrow("penaltySlotKeep is missing");
    // prompt ids after outputs: the slot holds the list, then more prompt ids arrive
    sameBits(slotted.step(pass([s], true, true)), whole.step(pass([s], false, true)));
    const late = pass([{ ...s, held: 3 }], true, false);
    late.penaltyIds = Int32Array.from([5]);
    late.penaltyIndptr = Int32Array.from([0, 1]);
    late.penaltyPromptLens = Int32Array.from([1]);
    expect(thrown(late)).toContain("prompt ids appended to slot 40 after its output ids");
    // the refused passes changed nothing: the slot still holds its 3 ids
    s.held = 3;
    s.out.push(12);
    sameBits(slotted.step(pass([s], true, false, 2)), whole.step(pass([s], false, false, 2)));
    // fg_sample_logits has no engine to keep slots in
    const b = pass([s], true, false);
    expect(() => sampleLogits("cpu", b, new Float32Array(V), V)).toThrow("penalty slots live in an engine");
  });
});
