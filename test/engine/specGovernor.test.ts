// The speculation governor (src/engine/speculative/governor.ts): fed synthetic pass timings, it
// keeps speculating where drafts pay, turns off where they cost, settles with few probe passes,
// decides each batch-size bucket apart, and ignores noise inside its margin. Then through a real
// engine (CPU): a proposer made slow turns speculation off, and the outputs stay those of
// decoding without it.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import { runToCompletion } from "../../src/engine/runToCompletion";
import { speculativeConfig } from "../../src/engine/speculative/config";
import { BASE_INTERVAL, MAX_INTERVAL, PROBE_PASSES, SpecGovernor } from "../../src/engine/speculative/governor";
import { NgramProposer } from "../../src/engine/speculative/ngram";

/** Runs `passes` passes of `decodes` decodes; a pass gives `on` / `off` decode tokens per ms. Returns the passes that speculated. */
function drive(g: SpecGovernor, decodes: number, passes: number, on: number, off: number, jitter = 0): number {
  let speculated = 0;
  let x = 12345;
  for (let i = 0; i < passes; i++) {
    const s = g.wants(decodes);
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const noise = 1 + jitter * (x / 2 ** 31 - 0.5);
    g.record(decodes, s, decodes * (s ? on : off), 1 / noise);
    if (s) speculated++;
  }
  return speculated;
}

describe("speculation governor", () => {
  test("drafts that pay: stays on, probing off ever more rarely", () => {
    const g = new SpecGovernor();
    const on = drive(g, 1, 5000, 1.6, 1);
    expect(g.state()).toEqual([{ decodes: 1, speculating: true, interval: expect.any(Number) }]);
    expect(g.flips).toBe(0);
    expect(5000 - on).toBeLessThan(60); // off passes: probes only, ever further apart
    expect(5000 - on).toBeGreaterThanOrEqual(PROBE_PASSES);
  });

  test("drafts that cost: off after the first probe, on again only to probe", () => {
    const g = new SpecGovernor();
    const on = drive(g, 1, 5000, 0.4, 1);
    expect(g.state()[0]!.speculating).toBe(false);
    expect(g.flips).toBe(1);
    // off is 2.5x faster: a probe of 4 on-passes costs 6 passes, so probes are >= 600 apart
    expect(g.state()[0]!.interval).toBeGreaterThanOrEqual(600);
    expect(on).toBeLessThanOrEqual(BASE_INTERVAL + 8 * PROBE_PASSES);
    expect(on).toBeGreaterThan(BASE_INTERVAL);
  });

  test("the workload changes: the governor follows", () => {
    const g = new SpecGovernor();
    drive(g, 4, 3000, 0.5, 1);
    expect(g.wants(4)).toBe(false);
    drive(g, 4, MAX_INTERVAL + PROBE_PASSES, 2, 1); // by the next probe (at most MAX_INTERVAL passes away) it flips back
    expect(g.state().find((b) => b.decodes === 4)!.speculating).toBe(true);
  });

  test("buckets by batch size decide apart", () => {
    const g = new SpecGovernor();
    drive(g, 1, 2000, 2, 1);
    drive(g, 32, 2000, 0.7, 1);
    drive(g, 3, 2000, 1.3, 1); // bucket 3-4
    expect(g.wants(1)).toBe(true);
    expect(g.wants(17)).toBe(false); // 17-32 share the bucket of 32
    expect(g.wants(4)).toBe(true);
    expect(g.state().map((b) => [b.decodes, b.speculating])).toEqual([[1, true], [4, true], [32, false]]);
  });

  test("equal rates with noise inside the margin: no flapping", () => {
    const g = new SpecGovernor();
    drive(g, 2, 5000, 1, 1, 0.04);
    expect(g.flips).toBeLessThanOrEqual(1);
  });

  test("timings of passes planned under the other mode, or of no time, are ignored", () => {
    const g = new SpecGovernor();
    g.record(1, false, 1, 1); // not probing: a stale off pass
    g.record(1, true, 5, 0);
    expect(g.state()).toEqual([{ decodes: 1, speculating: true, interval: BASE_INTERVAL }]);
  });
});

describe("speculation governor in the engine", () => {
  const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
  const prompts = [{ promptIds: Array.from({ length: 30 }, (_, i) => 10 + (i % 5)) }];
  const sampling = { maxTokens: 160, temperature: 0, ignoreEos: true };

  test("a proposer far slower than a pass is turned off; outputs are unchanged", async () => {
    const base = await EngineCore.load(FIXTURE, { maxSeqs: 4 });
    const want = runToCompletion(base, prompts, sampling).map((o) => o.tokenIds);
    base.destroy();
    const propose = NgramProposer.prototype.propose;
    let calls = 0;
    NgramProposer.prototype.propose = function (requests) {
      calls++;
      Bun.sleepSync(8); // a draft that costs many target passes
      return propose.call(this, requests);
    };
    try {
      const config = speculativeConfig({ method: "ngram", promptLookupMin: 1, promptLookupMax: 3 });
      const core = await EngineCore.load(FIXTURE, { maxSeqs: 4, speculative: config });
      const got = runToCompletion(core, prompts, sampling).map((o) => o.tokenIds);
      const spec = core.metrics().specDecode!;
      core.destroy();
      expect(got).toEqual(want);
      expect(spec.offByBatch).toEqual([1]); // /metrics: fastgen:spec_decode_off{max_batch="1"} 1
      expect(spec.governorFlips).toBe(1);
      expect(spec.governorProbes).toBe(1); // the next probe of on waits thousands of passes: it would cost ~10 each
      // 16 passes on, then a probe of 4 off finds off far faster; the next probe is past this run
      expect(calls).toBeGreaterThanOrEqual(BASE_INTERVAL);
      expect(calls).toBeLessThan(BASE_INTERVAL + 3 * PROBE_PASSES + 1);
    } finally {
      NgramProposer.prototype.propose = propose;
    }
  });
});
