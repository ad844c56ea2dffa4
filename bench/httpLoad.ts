/**
 * HTTP-layer load: sustained requests/s and latency percentiles of `fastgen serve` on the embedded
 * demo model, closed loop (each of C clients sends its next request when the last one answered,
 * over keep-alive connections). Two routes:
 *
 *   GET  /health                       the HTTP overhead alone (router, request id, access log)
 *   POST /v1/completions max_tokens 1   plus JSON parsing, tokenizing a tiny prompt, one engine
 *                                       pass through the Worker (prefill + 1 token), the response
 *
 *   bun bench/httpLoad.ts [--duration 5] [--concurrency 1,16,64] [--out bench/results/http-load.json]
 *                         [--server-flags="--threads 2"] [--url http://127.0.0.1:8000]
 *
 * The server runs as a child process (its own event loop and Worker); the load generator shares
 * the machine with it, so on few cores the figure is a lower bound. Prints a table, writes JSON.
 */
import { cpus, hostname } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { spawnFastgen, splitFlags } from "./load/spawnServer";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    concurrency: { type: "string", default: "1,16,64" },
    out: { type: "string", default: join(import.meta.dir, "results", "http-load.json") },
    "server-flags": { type: "string" },
    url: { type: "string" },
  },
});

interface Scenario {
  name: string;
  method: "GET" | "POST";
  path: string;
  body?: unknown;
}

const SCENARIOS: Scenario[] = [
  { name: "health", method: "GET", path: "/health" },
  { name: "completion-1tok", method: "POST", path: "/v1/completions", body: { prompt: "Hi", max_tokens: 1, temperature: 0 } },
];

interface Result {
  scenario: string;
  method: string;
  path: string;
  concurrency: number;
  seconds: number;
  requests: number;
  errors: number;
  rps: number;
  latency_ms: { mean: number; p50: number; p90: number; p99: number; max: number };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Runs `concurrency` clients for `seconds` (after `warmup` seconds not counted). */
async function load(url: string, s: Scenario, concurrency: number, seconds: number, warmup: number): Promise<Result> {
  const body = s.body === undefined ? undefined : JSON.stringify(s.body);
  const init: RequestInit = { method: s.method, headers: body ? { "content-type": "application/json" } : {}, body };
  const latencies: number[] = [];
  let errors = 0;
  const startAt = performance.now() + warmup * 1000;
  const endAt = startAt + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= endAt) return;
      let ok = false;
      try {
        const res = await fetch(`${url}${s.path}`, init);
        await res.arrayBuffer();
        ok = res.status === 200;
      } catch {}
      const t1 = performance.now();
      if (t0 < startAt) continue; // warm-up
      if (t1 > endAt) return; // straddles the end: the window counts whole requests only
      if (ok) latencies.push(t1 - t0);
      else errors++;
    }
  }));
  latencies.sort((a, b) => a - b);
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
  return {
    scenario: s.name, method: s.method, path: s.path, concurrency, seconds, requests: latencies.length, errors,
    rps: round(latencies.length / seconds, 1),
    latency_ms: {
      mean: round(mean, 3), p50: round(percentile(latencies, 50), 3), p90: round(percentile(latencies, 90), 3),
      p99: round(percentile(latencies, 99), 3), max: round(latencies.at(-1) ?? NaN, 3),
    },
  };
}

const duration = Number(values.duration);
const warmup = Number(values.warmup);
const levels = values.concurrency!.split(",").map(Number);
const serverFlags = splitFlags(values["server-flags"]);
const server = values.url ? null : await spawnFastgen({ flags: ["--grpc-port", "0", ...serverFlags], timeoutMs: 120_000 });
const url = values.url ?? server!.url;
const results: Result[] = [];
try {
  for (const s of SCENARIOS) for (const c of levels) results.push(await load(url, s, c, duration, warmup));
} finally {
  await server?.stop();
}

const rows = results.map((r) => [r.scenario, String(r.concurrency), String(r.requests), String(r.errors), r.rps.toFixed(1),
  r.latency_ms.p50.toFixed(2), r.latency_ms.p90.toFixed(2), r.latency_ms.p99.toFixed(2), r.latency_ms.max.toFixed(2)]);
const head = ["scenario", "clients", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(line(head));
for (const r of rows) console.log(line(r));

const command = `bun bench/httpLoad.ts ${process.argv.slice(2).join(" ")}`.trim();
const report = {
  command,
  date: new Date().toISOString(),
  machine: { host: hostname(), cpus: cpus().length, cpu: cpus()[0]?.model ?? "unknown", bun: Bun.version },
  server: values.url ? { url: values.url } : { command: `fastgen serve --host 127.0.0.1 --port 0 --grpc-port 0 ${serverFlags.join(" ")}`.trim(), model: "fastgen-demo-tiny (embedded)", access_log: "on (stdout, drained by the bench)" },
  method: `closed loop: C clients over keep-alive fetch, ${warmup} s warm-up then ${duration} s measured per row; latency = request sent to body read; the load generator runs on the same machine`,
  results,
};
await Bun.write(values.out!, `${JSON.stringify(report, null, 2)}\n`);
console.log(`wrote ${values.out}`);
