// The load generator end to end against the real server (in-process, 127.0.0.1, port 0) on the
// embedded demo model: a tiny suite, its JSON and SVG, the text fallback behind a proxy that
// refuses token-id prompts, compare/report, and the bench dispatcher's usage errors.
// Nothing here asserts on how long anything took.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main as compare, report } from "../../bench/load/compareCommand";
import { main as load } from "../../bench/load/loadCommand";
import type { BenchResult } from "../../bench/load/results";
import { makeRequests, pointWorkload, SUITES } from "../../bench/load/workload";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { startEngine } from "../../src/engine/asyncEngine";
import { defaultModelDir } from "../../src/model/defaultModel";
import type { FastGenServer } from "../../src/server/serverTypes";
import { createServer } from "../../src/server/httpServer";

const RUN = join(import.meta.dir, "..", "..", "bench", "run.ts");
const dir = mkdtempSync(join(tmpdir(), "fastgen-bench-"));
let engine: AsyncEngine;
let server: FastGenServer;
let url = "";
let proxy: Server<undefined>;
let idsResult: BenchResult;
let idsFile = "";

beforeAll(async () => {
  engine = await startEngine(defaultModelDir(), { threads: 2 });
  server = createServer({ engine });
  ({ url } = await server.listen("127.0.0.1", 0));
  // A server that only takes text prompts: token-id prompts get OpenAI's 400, the rest passes through.
  proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const body = req.method === "POST" ? await req.text() : undefined;
      if (path === "/v1/completions" && Array.isArray(JSON.parse(body!).prompt))
        return Response.json({ error: { message: "'prompt' must be a string", type: "invalid_request_error" } }, { status: 400 });
      return fetch(`${url}${path}`, { method: req.method, headers: req.headers, body });
    },
  });
}, 60_000);

afterAll(async () => {
  proxy?.stop(true);
  await server?.stop();
  await engine?.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

const read = (p: string) => JSON.parse(readFileSync(p, "utf8")) as BenchResult;

describe("load generator on the CPU server", () => {
  test("ci-tiny: two client counts, six exact-length requests each, every field sane", async () => {
    idsFile = (await load(["--server", `${url}/v1`, "--suite", "ci-tiny", "--label", "ci", "--out-dir", dir, "--quiet"]))!;
    expect(idsFile).toBe(join(dir, "ci-tiny-ci.json"));
    idsResult = read(idsFile);
    const r = idsResult;
    expect(r.schema).toBe("fastgen-bench/1");
    expect(r).toMatchObject({ suite: "ci-tiny", label: "ci", system: { model: "fastgen-demo-tiny", ownedBy: "fastgen", maxModelLen: 1024 } });
    expect(r.client).toEqual({ promptMode: "ids", logprobs: true, tokenizer: "server /tokenize" });
    expect(r.command).toContain("--suite ci-tiny");
    expect(r.points.map((p) => p.clients)).toEqual([1, 2]);
    for (const p of r.points) {
      // lengths do not depend on the pool size; each point draws its own requests
      const specs = makeRequests(pointWorkload(SUITES["ci-tiny"]!.workload, p.clients), 6, 1, 1024);
      expect(p.requests).toHaveLength(6);
      const clientsSeen = new Set(p.requests.map((q) => q.client));
      expect(clientsSeen.size).toBe(p.clients);
      p.requests.forEach((q, i) => {
        expect(q.error).toBeUndefined();
        expect(q.index).toBe(i);
        expect(q.promptTokens).toBe(specs[i]!.promptTokens); // token-id prompts: exact
        expect(q.genTokens).toBe(specs[i]!.genTokens);
        expect(q.tokensOut).toBe(q.genTokens); // ignore_eos + max_tokens: exact
        expect(q.tokenTimesS).toHaveLength(q.tokensOut);
        expect(q.ttftS).toBe(q.tokenTimesS[0]!);
        expect(q.ttftS!).toBeGreaterThan(0);
        for (let k = 1; k < q.tokenTimesS.length; k++) expect(q.tokenTimesS[k]!).toBeGreaterThanOrEqual(q.tokenTimesS[k - 1]!);
        expect(q.e2eS).toBeGreaterThanOrEqual(q.tokenTimesS[q.tokenTimesS.length - 1]!);
        expect(q.startS).toBeGreaterThanOrEqual(0);
      });
      const s = p.summary;
      expect(s).toMatchObject({ clients: p.clients, requests: 6, completed: 6, failed: 0 });
      for (const x of [s.wallS, s.throughputRps, s.meanLatencyS, s.meanTtftS, s.outputTokensPerS, s.tokenLatencyMs.p50, s.tokenLatencyMs.p95]) {
        expect(Number.isFinite(x)).toBe(true);
        expect(x).toBeGreaterThan(0);
      }
      expect(s.tokenLatencyMs.p50).toBeLessThanOrEqual(s.tokenLatencyMs.p90);
      expect(s.tokenLatencyMs.p90).toBeLessThanOrEqual(s.tokenLatencyMs.p95);
      expect(s.effective.map((e) => e.genTokensPerS)).toEqual([2, 4, 6]);
      for (const e of s.effective) {
        expect(e.metShare).toBeGreaterThanOrEqual(0);
        expect(e.metShare).toBeLessThanOrEqual(1);
        expect(e.effectiveRps).toBeCloseTo(s.throughputRps * e.metShare, 9);
      }
    }
    // Each point its own requests (a server's prefix cache must not serve a point the prompts of the one before).
    expect(r.points[1]!.requests.map((q) => q.promptTokens)).not.toEqual(r.points[0]!.requests.map((q) => q.promptTokens));
    const svg = readFileSync(join(dir, "ci-tiny-ci.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain(">ci<");
  }, 60_000);

  test("a server that refuses token-id prompts gets text prompts; generation stays exact", async () => {
    const file = (await load([
      "--server", `http://127.0.0.1:${proxy.port}`, "--suite", "ci-tiny", "--clients", "1", "--requests", "2",
      "--label", "text", "--tokenizer", defaultModelDir(), "--out-dir", dir, "--quiet",
    ]))!;
    const r = read(file);
    expect(r.client).toMatchObject({ promptMode: "text", logprobs: true });
    expect(r.client!.tokenizer).toStartWith("local ");
    const [p] = r.points;
    expect(p!.requests).toHaveLength(2);
    for (const q of p!.requests) {
      expect(q.error).toBeUndefined();
      expect(q.tokensOut).toBe(q.genTokens);
      expect(q.promptTokens).toBeGreaterThan(0); // as the server counted it (usage)
    }
  }, 60_000);

  test("compare merges results into one figure and table; report refills summaries from records", async () => {
    const textFile = join(dir, "ci-tiny-text.json");
    const out = (await compare([idsFile, textFile, "--out", join(dir, "cmp"), "--quiet"]))!;
    const merged = JSON.parse(readFileSync(out, "utf8"));
    expect(merged.results.map((x: { label: string }) => x.label)).toEqual(["ci", "text"]);
    expect(merged.results[0].points).toHaveLength(2);
    const svg = readFileSync(join(dir, "cmp.svg"), "utf8");
    expect(svg).toContain(">ci<");
    expect(svg).toContain(">text<");
    const md = readFileSync(join(dir, "cmp.md"), "utf8");
    expect(md).toContain("| ci | 1 |");
    expect(md).toContain("| text | 1 |");
    await expect(compare([idsFile, idsFile, "--out", join(dir, "dup")])).rejects.toThrow('two files have the label "ci"');

    // Records only (as the transformers baseline writes them): report fills in the summaries.
    const bare = { ...idsResult, label: "bare", points: idsResult.points.map((p) => ({ clients: p.clients, requests: p.requests })) };
    const bareFile = join(dir, "bare.json");
    writeFileSync(bareFile, JSON.stringify(bare));
    await report([bareFile, "--sla-gen", "3", "--quiet"]);
    const filled = read(bareFile);
    expect(filled.sla.genTokensPerS).toEqual([3]);
    expect(filled.points[0]!.summary.completed).toBe(6);
    expect(filled.points[0]!.summary.effective).toHaveLength(1);
    expect(existsSync(join(dir, "bare.svg"))).toBe(true);
  }, 60_000);
});

describe("bench dispatcher", () => {
  const run = (...args: string[]) => {
    const p = Bun.spawnSync([process.execPath, RUN, ...args], { stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
  };

  test("--help of the load generator, compare and workload", () => {
    const h = run("--help");
    expect(h.code).toBe(0);
    for (const flag of ["--server", "--suite", "--clients", "--requests", "--mean-prompt", "--mean-gen", "--label", "--serve"]) expect(h.out).toContain(flag);
    expect(run("compare", "--help").out).toContain("compare FILE.json");
    expect(run("workload", "--help").out).toContain("--tokenizer");
  });

  test("usage errors exit 2 with one line", () => {
    for (const args of [["nope"], ["--server", "http://127.0.0.1:1", "--clients", "0"], ["--server", "x", "--serve"], ["--server", "x", "--suite", "huge"], ["--bogus"], ["compare"]]) {
      const r = run(...args);
      expect(r.code).toBe(2);
      expect(r.err.trim().split("\n").length).toBeLessThanOrEqual(3);
    }
  });

  test("workload writes the same requests the sweep sends", () => {
    const out = join(dir, "wl.json");
    const r = run("workload", "--suite", "ci-tiny", "--tokenizer", defaultModelDir(), "--out", out);
    expect(r.code).toBe(0);
    const wl = JSON.parse(readFileSync(out, "utf8"));
    expect(wl.points.map((p: { clients: number; requests: number }) => [p.clients, p.requests])).toEqual([[1, 6], [2, 6]]);
    expect(wl.maxModelLen).toBe(1024);
    type Req = { prompt_ids: number[]; gen_tokens: number };
    wl.points.forEach((p: { clients: number; point_requests: Req[] }, k: number) => {
      const specs = makeRequests(pointWorkload(SUITES["ci-tiny"]!.workload, p.clients), 6, 1, 1024);
      expect(p.point_requests.map((q) => q.prompt_ids.length)).toEqual(specs.map((s) => s.promptTokens));
      expect(p.point_requests.map((q) => q.gen_tokens)).toEqual(specs.map((s) => s.genTokens));
      // Identical prompts to the HTTP run's (same pool, same offsets).
      expect(p.point_requests.map((q) => q.prompt_ids.length)).toEqual(idsResult.points[k]!.requests.map((q) => q.promptTokens));
    });
    // Points differ: no point re-sends another's prompts (a prefix cache would serve them).
    expect(wl.points[0].point_requests[0].prompt_ids).not.toEqual(wl.points[1].point_requests[0].prompt_ids);
    expect(wl.requests).toEqual(wl.points[0].point_requests);
  });
});
