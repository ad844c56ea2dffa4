/**
 * Request throughput of N replicas vs 1 behind the front end (load balancer), on one workload:
 * for each N, serve() starts N `fastgen replica` processes (--gpus-per-replica GPUs each where GPUs
 * are visible, else CPU replicas sharing the cores), then closed-loop clients send the same
 * seeded requests through the front end's gRPC service (or its HTTP API) and the wall time, requests/s,
 * output tokens/s, latency percentiles and each replica's share are recorded. Prints a table,
 * writes JSON (with the command that made it).
 *
 *   bun bench/replicas.ts [--model DIR] [--replicas 0,1,2] [--requests 96] [--concurrency 32]
 *     [--prompt-len 128] [--max-tokens 64] [--gpus-per-replica K] [--backend cpu|cuda]
 *     [--threads N (per CPU replica; default cores / N)] [--via grpc|http] [--repeat R] [--out FILE]
 *
 * With --repeat R each N is measured R times (alternating N, to spread drift) and the run with the
 * median requests/s is kept.
 *
 * `--replicas 0` is the engine in the front end's own process (no balancer), for the balancer's cost.
 * On the CPU the replicas split the same cores, so N replicas cannot beat 1 by much: that figure
 * measures the front end's overhead and balance. The scaling figure needs one GPU (set) per replica.
 */
import { availableParallelism, cpus } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import type { EngineOptions } from "../src/engine/options";
import { FastGenClient } from "../src/grpc/client";
import type { ServeHandle } from "../src/deploy/serve";
import { serve } from "../src/deploy/serve";
import { visibleGpus } from "../src/lb/devices";
import { defaultModelDir } from "../src/model/defaultModel";
import { Tokenizer } from "../src/tokenizer/tokenizer";

interface Workload {
  requests: number;
  concurrency: number;
  promptLen: number;
  maxTokens: number;
  via: "grpc" | "http";
}

interface Row {
  replicas: number;
  placement: string;
  requests: number;
  failed: number;
  wallS: number;
  reqPerS: number;
  outTokPerS: number;
  latencyP50Ms: number;
  latencyP90Ms: number;
  /** Requests each replica received. */
  shares: number[];
}

/** Seeded prompts of `len` token ids (the same for every N). */
function makePrompts(count: number, len: number, vocab: number): number[][] {
  let s = 12345;
  const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s);
  return Array.from({ length: count }, () => Array.from({ length: len }, () => 3 + (next() % (vocab - 3))));
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
};

/** One request through the front end; resolves with its output token count. */
async function send(h: ServeHandle, client: FastGenClient, prompt: number[], w: Workload): Promise<number> {
  if (w.via === "grpc") {
    const [r] = await client.generate([prompt], { max_new_tokens: w.maxTokens, ignore_eos: true });
    return r!.generated_length;
  }
  const res = await fetch(`${h.httpUrl}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: w.maxTokens, ignore_eos: true, temperature: 0 }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
}

/** Closed loop: `concurrency` clients, each sending the next prompt as soon as its last one is done. */
async function drive(h: ServeHandle, prompts: number[][], w: Workload) {
  const client = h.client();
  const latencies: number[] = [];
  let tokens = 0, failed = 0, next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: w.concurrency }, async () => {
      while (next < prompts.length) {
        const prompt = prompts[next++]!;
        const start = performance.now();
        try {
          const generated = await send(h, client, prompt, w); // not `tokens += await`: that reads tokens before the await
          tokens += generated;
          latencies.push(performance.now() - start);
        } catch (e) {
          failed++;
          console.error(`bench replicas: request failed: ${(e as Error).message}`);
        }
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  client.close();
  return { wallS, tokens, failed, latencies };
}

async function measure(modelDir: string, n: number, prompts: number[][], w: Workload, engine: Partial<EngineOptions>, gpusPerReplica?: number): Promise<Row> {
  const quiet = () => {};
  const h = await serve(modelDir, { replicas: n, port: 0, http: w.via === "http" ? 0 : undefined, engine, gpusPerReplica, log: quiet, output: quiet });
  try {
    const health = () => h.client().health();
    await drive(h, prompts.slice(0, Math.min(prompts.length, 2 * n)), { ...w, concurrency: 2 * n }); // warm-up
    const before = (await health()).replicas.map((r) => r.requests_routed);
    const { wallS, tokens, failed, latencies } = await drive(h, prompts, w);
    const shares = (await health()).replicas.map((r, i) => r.requests_routed - (before[i] ?? 0));
    const placement = h.processes.length > 0 ? describePlacement(n, engine, gpusPerReplica) : "in-process";
    return {
      replicas: n, placement, requests: prompts.length, failed, wallS, reqPerS: (prompts.length - failed) / wallS, outTokPerS: tokens / wallS,
      latencyP50Ms: percentile(latencies, 0.5), latencyP90Ms: percentile(latencies, 0.9), shares,
    };
  } finally {
    await h.terminate();
  }
}

function describePlacement(n: number, engine: Partial<EngineOptions>, gpusPerReplica?: number): string {
  if (engine.backend === "cpu" || visibleGpus().length === 0) return `cpu, ${engine.threads ?? Math.max(1, Math.floor(availableParallelism() / n))} threads each`;
  return `${gpusPerReplica ?? 1} GPU(s) each`;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" }, replicas: { type: "string" }, requests: { type: "string" }, concurrency: { type: "string" },
      "prompt-len": { type: "string" }, "max-tokens": { type: "string" }, "gpus-per-replica": { type: "string" },
      backend: { type: "string" }, threads: { type: "string" }, via: { type: "string" }, out: { type: "string" }, repeat: { type: "string" },
    },
  });
  const modelDir = values.model ?? defaultModelDir();
  const counts = (values.replicas ?? "0,1,2").split(",").map(Number);
  const w: Workload = {
    requests: Number(values.requests ?? 96),
    concurrency: Number(values.concurrency ?? 32),
    promptLen: Number(values["prompt-len"] ?? 128),
    maxTokens: Number(values["max-tokens"] ?? 64),
    via: values.via === "http" ? "http" : "grpc",
  };
  const backend = values.backend as "cpu" | "cuda" | undefined;
  const engine: Partial<EngineOptions> = { ...(backend ? { backend } : {}), ...(values.threads ? { threads: Number(values.threads) } : {}) };
  const gpusPerReplica = values["gpus-per-replica"] ? Number(values["gpus-per-replica"]) : undefined;
  const prompts = makePrompts(w.requests, w.promptLen, Tokenizer.fromDir(modelDir).vocabSize);

  const repeat = Number(values.repeat ?? 1);
  const runs = new Map<number, Row[]>(counts.map((n) => [n, []]));
  for (let k = 0; k < repeat; k++)
    for (const n of counts) {
      console.error(`bench replicas: ${n} replica(s), run ${k + 1}/${repeat}...`);
      runs.get(n)!.push(await measure(modelDir, n, prompts, w, engine, gpusPerReplica));
    }
  const rows = counts.map((n) => {
    const sorted = [...runs.get(n)!].sort((a, b) => a.reqPerS - b.reqPerS);
    return { ...sorted[Math.floor(sorted.length / 2)]!, reqPerSRuns: sorted.map((r) => r.reqPerS) };
  });
  const base = rows.find((r) => r.replicas === 1);
  console.log("replicas | placement                 | req/s   | out tok/s | p50 ms  | p90 ms  | vs 1  | shares");
  for (const r of rows)
    console.log(
      `${String(r.replicas).padStart(8)} | ${r.placement.padEnd(25)} | ${r.reqPerS.toFixed(2).padStart(7)} | ${r.outTokPerS.toFixed(0).padStart(9)} | ` +
        `${r.latencyP50Ms.toFixed(0).padStart(7)} | ${r.latencyP90Ms.toFixed(0).padStart(7)} | ${base ? (r.reqPerS / base.reqPerS).toFixed(2).padStart(5) : "  -  "} | ${r.shares.join("/")}`,
    );
  const gpu = rows.some((r) => r.placement.includes("GPU"));
  const out = values.out ?? join(import.meta.dir, "results", `replicas-${gpu ? "gpu" : "cpu"}.json`);
  const result = {
    command: `bun bench/replicas.ts ${argv.join(" ")}`.trim(),
    date: new Date().toISOString(),
    model: basename(modelDir),
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    gpus: visibleGpus(),
    workload: w,
    rows,
    speedupVsOne: base ? Object.fromEntries(rows.map((r) => [r.replicas, r.reqPerS / base.reqPerS])) : null,
    note: gpu
      ? "one GPU set per replica"
      : "CPU replicas split the same cores (and share the machine with the client and front end): this measures the front end's overhead and balance, not scaling",
  };
  await Bun.write(out, `${JSON.stringify(result, null, 2)}\n`);
  console.error(`bench replicas: wrote ${out}`);
}

if (import.meta.main) await main(process.argv.slice(2));
