// Regression (found by the fuzz suite): with n > 1, samples that finish in different forward
// passes (admitted in waves, or stopped early) must each send exactly one finishing delta. Before
// the fix a finished sample re-sent an empty finishing delta whenever a sibling advanced, so the
// request's stream ended early (n = 2) or never (the per-request count went below zero).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startEngine } from "../../src/engine/asyncEngine";
import { EngineCore } from "../../src/engine/engineCore";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
const PROMPT = [1, 5, 9, 13, 17];

describe("n samples finishing in different passes", () => {
  test("EngineCore: one finishing delta per sample, every token once", async () => {
    // Two sequences per pass: five samples run in three waves.
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 64, maxSeqs: 2 });
    try {
      core.addRequest("r", PROMPT, { maxTokens: 6, temperature: 1, seed: 3, n: 5, ignoreEos: true });
      const finishes = new Array<number>(5).fill(0);
      const tokens = new Array<number>(5).fill(0);
      while (core.hasWork())
        for (const item of core.step())
          for (const d of item.deltas) {
            tokens[d.index]! += d.tokenIds.length;
            if (d.finishReason) finishes[d.index]!++;
          }
      expect(finishes).toEqual([1, 1, 1, 1, 1]);
      expect(tokens).toEqual([6, 6, 6, 6, 6]);
      expect(core.metrics().kvBlocksFree).toBe(core.metrics().kvBlocksTotal);
    } finally {
      core.destroy();
    }
  });

  test("AsyncEngine: the request's stream ends once every sample finished, not before or never", async () => {
    const engine = await startEngine(FIXTURE, { backend: "cpu", kvBlocks: 64, maxSeqs: 3 });
    try {
      for (const n of [2, 7]) {
        const tokens = new Array<number>(n).fill(0);
        const reasons: string[] = [];
        for await (const d of engine.generate({ requestId: `n${n}`, promptIds: PROMPT, sampling: { maxTokens: 5, n, temperature: 1, seed: n, ignoreEos: true } })) {
          tokens[d.index]! += d.tokenIds.length;
          if (d.finishReason) reasons.push(`${d.index}:${d.finishReason}`);
        }
        expect(tokens).toEqual(new Array(n).fill(5));
        expect(reasons.sort()).toEqual(Array.from({ length: n }, (_, i) => `${i}:length`).sort());
      }
    } finally {
      await engine.shutdown();
    }
  });
});
