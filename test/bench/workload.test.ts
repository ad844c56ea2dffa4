// Seeded workloads: same seed, same requests; lengths follow the asked distribution, caps and the
// context hold; suites and flags resolve; prompts are cut from the token pool exactly.
import { describe, expect, test } from "bun:test";
import { cycleIds } from "../../bench/load/corpus";
import { SUITES, makeRequests, mulberry32, normal, requestsPerPoint, resolveSuite } from "../../bench/load/workload";

const W = { meanPrompt: 2600, meanGen: 60, deviation: 0.3, maxPrompt: 4000, seed: 1 };

describe("workload", () => {
  test("4 x clients + 32 requests per point unless a count is fixed", () => {
    expect(requestsPerPoint(1)).toBe(36);
    expect(requestsPerPoint(32)).toBe(160);
    expect(requestsPerPoint(32, 6)).toBe(6);
  });

  test("seeded: the same seed gives the same list, a longer list extends a shorter one", () => {
    const a = makeRequests(W, 40, 500);
    expect(makeRequests(W, 40, 500)).toEqual(a);
    expect(makeRequests(W, 10, 500)).toEqual(a.slice(0, 10));
    expect(makeRequests({ ...W, seed: 2 }, 40, 500)).not.toEqual(a);
    expect(a.map((r) => r.index)).toEqual([...Array(40).keys()]);
  });

  test("lengths: means and 30% deviations of the asked normals; the prompt cap holds", () => {
    const rs = makeRequests(W, 5000, 500);
    const stats = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      return { mean: m, sd: Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length) };
    };
    const g = stats(rs.map((r) => r.genTokens));
    expect(g.mean / 60).toBeCloseTo(1, 1);
    expect(g.sd / 18).toBeCloseTo(1, 1);
    const p = rs.map((r) => r.promptTokens);
    expect(Math.max(...p)).toBeLessThanOrEqual(4000);
    expect(p.filter((x) => x === 4000).length).toBeGreaterThan(0); // the cap bites in the right tail
    expect(stats(p).mean / 2600).toBeCloseTo(1, 1);
    for (const r of rs) {
      expect(r.promptTokens).toBeGreaterThanOrEqual(1);
      expect(r.genTokens).toBeGreaterThanOrEqual(1);
      expect(r.poolOffset).toBeGreaterThanOrEqual(0);
      expect(r.poolOffset).toBeLessThan(500);
    }
  });

  test("every request fits the server's context", () => {
    for (const r of makeRequests({ ...W, meanPrompt: 900, meanGen: 300 }, 500, 100, 1024)) {
      expect(r.promptTokens + r.genTokens).toBeLessThanOrEqual(1024);
      expect(r.promptTokens).toBeGreaterThanOrEqual(1);
    }
  });

  test("bad means are refused", () => {
    expect(() => makeRequests({ ...W, meanGen: 0 }, 1, 10)).toThrow("mean lengths");
    expect(() => makeRequests(W, 1, 0)).toThrow("pool");
  });

  test("mulberry32 stays in [0, 1) and normal draws are standard", () => {
    const rng = mulberry32(7);
    const xs = Array.from({ length: 20000 }, () => normal(rng));
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length;
    expect(Math.abs(m)).toBeLessThan(0.03);
    expect(v).toBeCloseTo(1, 1);
    const u = mulberry32(3);
    for (let i = 0; i < 1000; i++) {
      const x = u();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });

  test("suites: presets, flag overrides, custom names, unknown names", () => {
    expect(SUITES["fastgen-2600-60"]!.clients).toEqual([1, 2, 4, 8, 12, 16, 20, 24, 28, 32]);
    expect(SUITES["fastgen-1200-128"]!.workload).toMatchObject({ meanPrompt: 1200, meanGen: 128, deviation: 0.3, maxPrompt: 4000 });
    expect(resolveSuite(undefined, {}).name).toBe("fastgen-2600-60");
    const custom = resolveSuite(undefined, { meanPrompt: 300, meanGen: 32, clients: [1, 2, 4] });
    expect(custom.name).toBe("p300-g32");
    expect(custom.clients).toEqual([1, 2, 4]);
    const tiny = resolveSuite("ci-tiny", { requests: 3 });
    expect(tiny.name).toBe("ci-tiny");
    expect(tiny.requests).toBe(3);
    expect(() => resolveSuite("nope", {})).toThrow('unknown suite "nope"');
  });

  test("prompts are cut from the pool cyclically, exactly as long as asked", () => {
    expect(cycleIds([5, 6, 7], 2, 7)).toEqual([7, 5, 6, 7, 5, 6, 7]);
    expect(cycleIds([5, 6, 7], 0, 0)).toEqual([]);
    expect(() => cycleIds([], 0, 3)).toThrow();
  });
});
