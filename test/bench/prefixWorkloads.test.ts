import { describe, expect, test } from "bun:test";
import { segmentIds } from "../../bench/load/prefixWorkloads";
import { SUITES, makeRequests, resolveSuite } from "../../bench/load/workload";
import type { PreparedRequest } from "../../bench/load/runPoint";
import { runPoint } from "../../bench/load/runPoint";

const POOL = Array.from({ length: 500 }, (_, i) => 1000 + i);

describe("prefix workloads", () => {
  test("shared-prefix: every prompt starts with the same prefix and ends with its own suffix", () => {
    const w = resolveSuite("shared-prefix", { prefixTokens: 300, meanPrompt: 20 }).workload;
    const reqs = makeRequests(w, 20, POOL.length, 1024);
    const prompts = reqs.map((r) => segmentIds(POOL, r.segments!));
    for (const [i, p] of prompts.entries()) {
      expect(p.slice(0, 300)).toEqual(prompts[0]!.slice(0, 300));
      expect(p.length).toBe(reqs[i]!.promptTokens);
      expect(p.length + reqs[i]!.genTokens).toBeLessThanOrEqual(1024);
    }
    expect(new Set(prompts.map((p) => p.slice(300).join())).size).toBeGreaterThan(15);
  });

  test("chat-multiturn: each turn re-sends the system prompt and the whole history, 4-8 turns", () => {
    const w = { ...SUITES["chat-multiturn"]!.workload, maxPrompt: 100_000 };
    const reqs = makeRequests(w, 60, POOL.length);
    const prompts = reqs.map((r) => segmentIds(POOL, r.segments!));
    let turns = 1;
    const lengths: number[] = [];
    for (let i = 1; i < prompts.length; i++) {
      const prev = prompts[i - 1]!;
      expect(prompts[i]!.slice(0, 1500)).toEqual(prompts[0]!.slice(0, 1500));
      if (prompts[i]!.length > prev.length && prompts[i]!.slice(0, prev.length).join() === prev.join()) turns++;
      else {
        lengths.push(turns);
        turns = 1;
      }
    }
    expect(lengths.length).toBeGreaterThan(3);
    for (const n of lengths) expect(n >= 4 && n <= 8).toBe(true);
    // The same workload gives the same requests.
    expect(makeRequests(w, 60, POOL.length)).toEqual(reqs);
  });

  test("--prefix-tokens only applies to prefix suites", () => {
    expect(() => resolveSuite("cpu-300-32", { prefixTokens: 10 })).toThrow("prefix suite");
  });

  test("--sessions: a client runs one conversation's turns in order, each after the last reply", async () => {
    expect(() => resolveSuite("shared-prefix", { sessions: true })).toThrow("chat-multiturn");
    const w = resolveSuite("chat-multiturn", { sessions: true, prefixTokens: 50, meanPrompt: 10, meanGen: 4 }).workload;
    const reqs = makeRequests(w, 40, POOL.length, 1024);
    expect(new Set(reqs.map((r) => r.session)).size).toBeGreaterThan(3);
    const prepared: PreparedRequest[] = reqs.map((spec) => ({ spec, prompt: segmentIds(POOL, spec.segments!) }));
    const log: { session: number; start: number; end: number }[] = [];
    let clock = 0;
    const records = await runPoint(3, prepared, async (req) => {
      const start = clock++;
      await Bun.sleep(1 + (req.spec.index % 3));
      log.push({ session: req.spec.session!, start, end: clock++ });
      return { status: 200, startMs: 0, endMs: 1, tokenMs: [] };
    });
    expect(records).toHaveLength(40);
    // No two turns of one conversation overlap, and one client ran each conversation.
    for (const s of new Set(log.map((l) => l.session))) {
      const turns = log.filter((l) => l.session === s);
      for (let i = 1; i < turns.length; i++) expect(turns[i]!.start).toBeGreaterThan(turns[i - 1]!.end - 1);
      expect(new Set(records.filter((r, i) => reqs[i]!.session === s).map((r) => r.client)).size).toBe(1);
    }
  });
});
