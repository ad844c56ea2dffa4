// The SLA / EMA / percentile math of the load generator against hand-computed cases (synthetic
// timestamps: nothing here is timed).
import { describe, expect, test } from "bun:test";
import type { RequestRecord } from "../../bench/load/metrics";
import { DEFAULT_SLA, emaAdjusted, interTokenGaps, meetsSla, percentile, summarizePoint, wallTimeOf } from "../../bench/load/metrics";

/** A completed request sent at `startS` whose tokens arrived at `times` (seconds since it was sent). */
function rec(promptTokens: number, times: number[], startS = 0, extra: Partial<RequestRecord> = {}): RequestRecord {
  return {
    index: 0,
    client: 0,
    promptTokens,
    genTokens: times.length,
    tokensOut: times.length,
    startS,
    ttftS: times[0] ?? null,
    tokenTimesS: times,
    e2eS: times[times.length - 1] ?? 0,
    ...extra,
  };
}

describe("exponential moving average (pandas ewm(span).mean(), adjusted)", () => {
  test("span 16: [0.1, 0.5] -> [0.1, 0.3125]", () => {
    // alpha = 2/17, decay = 15/17: (0.5 + 15/17 * 0.1) / (1 + 15/17) = (10/17) / (32/17) = 0.3125
    const ema = emaAdjusted([0.1, 0.5], 16);
    expect(ema[0]).toBeCloseTo(0.1, 12);
    expect(ema[1]).toBeCloseTo(0.3125, 12);
  });

  test("span 3 (decay 1/2): [1, 0, 0] -> [1, 1/3, 1/7]", () => {
    const ema = emaAdjusted([1, 0, 0], 3);
    expect(ema[0]).toBeCloseTo(1, 12);
    expect(ema[1]).toBeCloseTo(1 / 3, 12); // 0.5 / 1.5
    expect(ema[2]).toBeCloseTo(1 / 7, 12); // 0.25 / 1.75
  });

  test("a constant series stays constant; an empty one gives nothing", () => {
    for (const v of emaAdjusted(Array(40).fill(0.2), 16)) expect(v).toBeCloseTo(0.2, 12);
    expect(emaAdjusted([], 16)).toEqual([]);
  });

  test("gaps between arrivals", () => {
    expect(interTokenGaps([1, 1.5, 1.5, 2.25])).toEqual([0.5, 0, 0.75]);
    expect(interTokenGaps([3])).toEqual([]);
  });
});

describe("SLA", () => {
  test("first token: within prompt_tokens / 512 s passes (boundary included), later fails at every rate", () => {
    expect(meetsSla(rec(512, [1.0]), 2)).toBe(true); // 512 / 512 = 1 s, exactly on time
    expect(meetsSla(rec(256, [0.4]), 6)).toBe(true);
    for (const rate of [2, 4, 6]) expect(meetsSla(rec(512, [1.01]), rate)).toBe(false);
  });

  test("token rate: gaps [0.1, 0.5] smooth to 0.3125 s (3.2 tokens/s): meets 2, fails 4 and 6", () => {
    const r = rec(1024, [1.0, 1.1, 1.6]);
    expect(meetsSla(r, 2)).toBe(true);
    expect(meetsSla(r, 4)).toBe(false);
    expect(meetsSla(r, 6)).toBe(false);
  });

  test("steady 0.2 s gaps (5 tokens/s): meets 2 and 4, fails 6", () => {
    const r = rec(100, [0.1, 0.3, 0.5, 0.7, 0.9]);
    expect([2, 4, 6].map((g) => meetsSla(r, g))).toEqual([true, true, false]);
  });

  test("one 1 s stall: after 12 fast tokens the EMA absorbs it, after 2 it does not", () => {
    // 12 gaps of 0.01 s, then one of 1 s. With decay d = 15/17 the previous denominator is
    // D = (1 - d^12) / (1 - d) and numerator 0.01 D, so EMA = (1 + d 0.01 D) / (1 + d D) = 0.154953 s:
    // 6.45 tokens/s, above every rate.
    const d = 15 / 17;
    const times = [0.05];
    for (let i = 0; i < 12; i++) times.push(times[times.length - 1]! + 0.01);
    times.push(times[times.length - 1]! + 1);
    const ema = emaAdjusted(interTokenGaps(times), 16);
    expect(ema[ema.length - 1]).toBeCloseTo(0.154953, 6);
    expect([2, 4, 6].map((g) => meetsSla(rec(100, times), g))).toEqual([true, true, true]);
    // After 2 fast gaps: (1 + d 0.01 (1 + d)) / (1 + d + d^2) = 0.382055 s, 2.6 tokens/s.
    const short = [0.05, 0.06, 0.07, 1.07];
    expect(emaAdjusted(interTokenGaps(short), 16)[2]).toBeCloseTo(0.382055, 6);
    expect((1 + d * 0.01 * (1 + d)) / (1 + d + d * d)).toBeCloseTo(0.382055, 6);
    expect([2, 4, 6].map((g) => meetsSla(rec(100, short), g))).toEqual([true, false, false]);
  });

  test("a failed request never meets it", () => {
    expect(meetsSla(rec(512, [0.1, 0.2], 0, { error: "HTTP 503: overloaded" }), 2)).toBe(false);
    expect(meetsSla({ ...rec(512, []), ttftS: null }, 2)).toBe(false);
  });

  test("a custom SLA: 100 prompt tokens/s", () => {
    const sla = { ...DEFAULT_SLA, promptTokensPerS: 100 };
    expect(meetsSla(rec(50, [0.6]), 2, sla)).toBe(false); // 50 / 100 = 0.5 s allowed
    expect(meetsSla(rec(50, [0.4]), 2, sla)).toBe(true);
  });
});

describe("percentiles (numpy's linear interpolation)", () => {
  test("[1, 2, 3, 4]: P50 2.5, P90 3.7, P95 3.85; one value is every percentile", () => {
    expect(percentile([4, 1, 3, 2], 50)).toBeCloseTo(2.5, 12);
    expect(percentile([1, 2, 3, 4], 90)).toBeCloseTo(3.7, 12);
    expect(percentile([1, 2, 3, 4], 95)).toBeCloseTo(3.85, 12);
    expect(percentile([7], 95)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe("point summary", () => {
  // Four requests over 2 s of wall time (first sent at 0, last ends at 2):
  //   a: 512 prompt tokens, first token at 0.5 s, gaps 0.1 0.1        -> meets 2, 4, 6
  //   b: 512 prompt tokens, first token at 0.5 s, gaps 0.2 0.2        -> meets 2, 4 (5 tokens/s)
  //   c: 51 prompt tokens (0.0996 s allowed), first token at 0.2 s    -> meets none
  //   d: failed (HTTP 503)                                            -> meets none, not completed
  const records: RequestRecord[] = [
    { ...rec(512, [0.5, 0.6, 0.7], 0), index: 0 },
    { ...rec(512, [0.5, 0.7, 0.9], 0.7), index: 1, client: 1 },
    { ...rec(51, [0.2, 0.3], 1.6), index: 2, client: 1 },
    { index: 3, client: 0, promptTokens: 100, genTokens: 4, tokensOut: 0, startS: 0.7, ttftS: null, tokenTimesS: [], e2eS: 0.01, error: "HTTP 503: overloaded" },
  ];

  test("wall time is first send to last end", () => {
    expect(wallTimeOf(records)).toBeCloseTo(1.9, 12); // from a's send at 0 to c's end at 1.6 + 0.3
    expect(wallTimeOf([])).toBe(0);
  });

  test("throughput, latency, effective throughput and token latency (wall time given: 2 s)", () => {
    const wall = 2;
    const s = summarizePoint(4, records, wall);
    expect(s.clients).toBe(4);
    expect(s.requests).toBe(4);
    expect(s.completed).toBe(3);
    expect(s.failed).toBe(1);
    expect(s.throughputRps).toBeCloseTo(1.5, 12); // 3 completed / 2 s
    expect(s.meanLatencyS).toBeCloseTo((0.7 + 0.9 + 0.3) / 3, 12);
    expect(s.meanTtftS).toBeCloseTo((0.5 + 0.5 + 0.2) / 3, 12);
    expect(s.outputTokensPerS).toBeCloseTo(8 / 2, 12);
    // gaps pooled: a 0.1 0.1, b 0.2 0.2, c 0.1 -> sorted [0.1 0.1 0.1 0.2 0.2] ms x1000
    expect(s.tokenLatencyMs.p50).toBeCloseTo(100, 9);
    expect(s.tokenLatencyMs.p90).toBeCloseTo(200, 9); // rank 3.6 between 200 and 200
    expect(s.tokenLatencyMs.mean).toBeCloseTo(140, 9);
    const eff = Object.fromEntries(s.effective.map((e) => [e.genTokensPerS, e]));
    expect(eff[2]!.metShare).toBeCloseTo(0.5, 12); // a, b of 4
    expect(eff[2]!.effectiveRps).toBeCloseTo(1, 12); // 2 met / 2 s
    expect(eff[4]!.metShare).toBeCloseTo(0.5, 12);
    expect(eff[6]!.metShare).toBeCloseTo(0.25, 12); // a only
    expect(eff[6]!.effectiveRps).toBeCloseTo(0.5, 12);
  });

  test("without failures effective throughput is throughput x the share that met the SLA", () => {
    const ok = records.slice(0, 3);
    const s = summarizePoint(2, ok, 2);
    for (const e of s.effective) expect(e.effectiveRps).toBeCloseTo(s.throughputRps * e.metShare, 12);
  });
});
