// Per-row penalties on the CPU (issue #22): each verification row of a sequence is penalized as
// if the drafts before it had been generated (fg_sample_logits, rowPenalties.ts), and through
// fg_step a verification pass with the list kept in a penalty slot samples bit for bit as the
// same pass with the whole list sent.
import { describe, expect, test } from "bun:test";
import { bytesOf, buildEngine, makeBatch, randomTokens, randomWeights, rng, tinySpec } from "./helpers";
import { mismatches, runRowPenalties, verifyCases } from "./rowPenalties";

describe("per-row penalties (cpu)", () => {
  test("verification row j draws what one row alone draws with drafts 0..j-1 as outputs", () => {
    for (const vocab of [50, 300]) {
      const cases = verifyCases(vocab, vocab, 60);
      const run = runRowPenalties("cpu", vocab, cases);
      expect(mismatches(run, cases)).toEqual([]);
      // the drafts changed a good share of the rows' picks: the check has teeth
      expect(run.draftsMattered).toBeGreaterThan(run.rows / 10);
    }
  });

  test("fg_step: a verification pass with its list in a penalty slot equals the whole list sent", () => {
    const spec = tinySpec({ vocab_size: 50 });
    const w = randomWeights(spec, 5);
    const whole = buildEngine(spec, w, { numBlocks: 32, blockSize: 4 });
    const slotted = buildEngine(spec, w, { numBlocks: 32, blockSize: 4 });
    try {
    const r = rng(3);
    const prompt = randomTokens(r, 7, 50);
    const chunk = (tokens: number[], context: number, rows: { at: number }[]) => ({
      tokens, context, blocks: [0, 1, 2, 3], rows, wants: true, temperature: 0.9, seed: 42n, presence: 0.7, frequency: 0.5, repetition: 1.2,
    });
    // prefill: the slot takes the prompt (repetition counts it)
    const pre = makeBatch([chunk(prompt, 0, [])], { returnLogits: true });
    pre.penaltyIds = Int32Array.from(prompt);
    pre.penaltyIndptr = Int32Array.of(0, prompt.length);
    pre.penaltyPromptLens = Int32Array.of(prompt.length);
    const t = whole.step(pre).ids[0]!;
    const slotPre = { ...pre, penaltySlots: Int32Array.of(3), penaltySlotKeep: Int32Array.of(0) };
    expect(slotted.step(slotPre).ids[0]).toBe(t);
    // verify 4 drafts after t: whole list = prompt + t; the slot gets only t
    const drafts = randomTokens(r, 4, 50);
    const ver = makeBatch([chunk([t, ...drafts], prompt.length, [0, 1, 2, 3].map((at) => ({ at })))], { returnLogits: true, numLogprobs: 3 });
    ver.penaltyIds = Int32Array.from([...prompt, t]);
    ver.penaltyIndptr = Int32Array.of(0, prompt.length + 1);
    ver.penaltyPromptLens = Int32Array.of(prompt.length);
    const a = whole.step(ver);
    const b = slotted.step({ ...ver, penaltyIds: Int32Array.of(t), penaltyIndptr: Int32Array.of(0, 1), penaltyPromptLens: Int32Array.of(0), penaltySlots: Int32Array.of(3), penaltySlotKeep: Int32Array.of(prompt.length) });
    for (const key of ["ids", "logprobs", "topIds", "logits"] as const) {
      expect(Buffer.from(bytesOf(b[key] as Float32Array)).equals(Buffer.from(bytesOf(a[key] as Float32Array)))).toBe(true);
    }
    } finally {
      whole.destroy();
      slotted.destroy();
    }
  });
});
