/**
 * `bun run bench -- soak [options]`: the soak test of issue 25's proof. Starts `fastgen serve` on the
 * demo model (its own process, bench/load/spawnServer.ts), sends a seeded mix of N requests at a
 * bounded concurrency (completions and chat, streamed and not, n > 1, client aborts), and every
 * interval samples the server's RSS (VmRSS of its process and its children, the engine process
 * among them) and the end-to-end latency p99 of the requests that ended in that window.
 *
 * PASS needs all of: no failed or lost request (every answer whole: each choice finished, streams
 * ended by [DONE], ignore_eos lengths exact), the final RSS (all requests done) at most 10% above
 * the RSS after the warm-up window, and p99 flat: the last window's p99 at most 1.5x the first
 * post-warm-up window's (a last window of fewer than 20 requests is merged into the one before).
 * Prints a table, writes bench/results/soak-<label>.json; the exit status is 1 unless PASS.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CORPUS_TEXT } from "./load/corpus";
import { BenchUsageError, numberFlag } from "./load/flags";
import { fileSafe } from "./load/results";
import { spawnFastgen, splitFlags } from "./load/spawnServer";
import { streamCompletion } from "./load/sseClient";

export const SOAK_HELP = `Usage: bun run bench -- soak [--requests 5000] [--concurrency 16] [--interval 30] [options]

  --requests N       requests to send (default 5000)
  --concurrency N    requests in flight at once (default 16)
  --interval S       seconds between samples of RSS and p99; the first window is the warm-up (default 30)
  --seed N           seed of the request mix (default 1)
  --serve-flags "."  more \`fastgen serve\` flags (e.g. "--max-seqs 32 --kv-blocks 256")
  --label NAME       result name: bench/results/soak-<label>.json (default demo)
  --out-dir DIR      where the JSON goes (default bench/results)`;

type Kind = "completion" | "completion-stream" | "chat" | "chat-stream" | "n-samples" | "abort";
/** Share of each kind in the mix (sums to 1). */
const MIX: [Kind, number][] = [["completion-stream", 0.3], ["completion", 0.2], ["chat-stream", 0.2], ["chat", 0.15], ["n-samples", 0.1], ["abort", 0.05]];
const WORDS = CORPUS_TEXT.split(/\s+/).filter((w) => w !== "");

interface RequestSpec { kind: Kind; prompt: string; maxTokens: number; n: number; stream: boolean; chat: boolean; temperature: number; seed: number; abortAfterMs: number }
/** One request as it ended. `failed`: refused, broken or not whole; aborted ones are on purpose. */
interface Outcome { kind: Kind; endMs: number; latencyMs: number; aborted: boolean; error?: string }
interface Sample { tS: number; done: number; failed: number; aborted: number; rssMiB: number; frontMiB: number; windowRequests: number; p50Ms: number; p99Ms: number }

/** mulberry32, as the rest of the benchmarks and tests. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    let t = (a = (a + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seeded request list: request i is the same for every run with the same seed. */
export function soakRequests(count: number, seed: number): RequestSpec[] {
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  return Array.from({ length: count }, () => {
    let u = r();
    const kind = MIX.find(([, share]) => (u -= share) < 0)?.[0] ?? "completion";
    const start = int(0, WORDS.length - 1);
    const prompt = Array.from({ length: int(4, 80) }, (_, i) => WORDS[(start + i) % WORDS.length]).join(" ");
    const chat = kind.startsWith("chat") || ((kind === "n-samples" || kind === "abort") && r() < 0.5);
    const stream = kind.endsWith("stream") || kind === "abort" || (kind === "n-samples" && r() < 0.5);
    return {
      kind, prompt, chat, stream, n: kind === "n-samples" ? int(2, 4) : 1, temperature: r() < 0.5 ? 0 : 0.8, seed: int(0, 1e6),
      // Long enough that 5000 requests on the demo model span several 30 s windows (~3 min on 2 cores).
      maxTokens: kind === "abort" ? int(64, 256) : int(1, 256), abortAfterMs: int(0, 40),
    };
  });
}

/** Sends one request and checks its answer is whole; never throws. */
async function send(baseUrl: string, model: string, spec: RequestSpec): Promise<Outcome> {
  const t0 = performance.now();
  const end = (error?: string, aborted = false): Outcome => ({ kind: spec.kind, endMs: performance.now(), latencyMs: performance.now() - t0, aborted, error });
  if (spec.kind === "completion-stream") {
    // The load generator's own client: a streamed completion timed token by token.
    const t = await streamCompletion({ baseUrl }, model, spec.prompt, spec.maxTokens, { prompt: "text", logprobs: true });
    if (t.error) return end(t.error);
    return end(t.tokenMs.length === spec.maxTokens ? undefined : `${t.tokenMs.length} of ${spec.maxTokens} tokens`);
  }
  const body: Record<string, unknown> = { model, max_tokens: spec.maxTokens, n: spec.n, stream: spec.stream, ignore_eos: true, temperature: spec.temperature, seed: spec.seed };
  if (spec.chat) body.messages = [{ role: "user", content: spec.prompt }];
  else body.prompt = spec.prompt;
  const client = new AbortController();
  let leftOnPurpose = false;
  const timeout = setTimeout(() => client.abort(new Error("no answer in 120 s (lost)")), 120_000);
  try {
    const res = await fetch(`${baseUrl}/v1/${spec.chat ? "chat/completions" : "completions"}`, {
      method: "POST", signal: client.signal, headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    if (!res.ok) return end(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
    if (!spec.stream) {
      const json = (await res.json()) as { choices: { finish_reason: string | null }[]; usage: { completion_tokens: number } };
      const whole = json.choices.length === spec.n && json.choices.every((c) => c.finish_reason === "length");
      return end(whole && json.usage.completion_tokens === spec.n * spec.maxTokens ? undefined : `not whole: ${JSON.stringify(json).slice(0, 200)}`);
    }
    const finished = new Set<number>();
    let sawDone = false;
    let buffer = "";
    const decoder = new TextDecoder();
    for await (const chunk of res.body!) {
      buffer += decoder.decode(chunk, { stream: true });
      if (spec.kind === "abort") {
        await Bun.sleep(spec.abortAfterMs); // the client goes away mid-stream
        leftOnPurpose = true;
        client.abort();
        return end(undefined, true);
      }
      for (let cut; (cut = buffer.indexOf("\n\n")) >= 0; buffer = buffer.slice(cut + 2)) {
        const data = buffer.slice(0, cut).replace(/^data: ?/, "");
        if (data === "[DONE]") sawDone = true;
        else for (const c of (JSON.parse(data) as { choices?: { index: number; finish_reason?: string | null }[] }).choices ?? []) if (c.finish_reason) finished.add(c.index);
      }
    }
    return end(sawDone && finished.size === spec.n ? undefined : `stream not whole: [DONE] ${sawDone}, ${finished.size} of ${spec.n} choices finished`);
  } catch (e) {
    if (leftOnPurpose) return end(undefined, true); // leaving the loop cancels the body, which may throw
    return end(client.signal.aborted ? String(client.signal.reason) : `request failed: ${(e as Error).message}`);
  } finally {
    clearTimeout(timeout);
  }
}

/** Parent pid of every process (from /proc/PID/stat; the command may hold spaces and parens). */
function parents(): Map<number, number> {
  const ppid = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      ppid.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {} // gone meanwhile
  }
  return ppid;
}

function vmRssKiB(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** RSS of `root` (the front end) and of it with all its descendants (the engine process...), MiB. */
function treeRss(root: number): { frontMiB: number; rssMiB: number } {
  const ppid = parents();
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, parent] of ppid) if (parent === tree[i]) tree.push(pid);
  return { frontMiB: vmRssKiB(root) / 1024, rssMiB: tree.reduce((s, p) => s + vmRssKiB(p), 0) / 1024 };
}

/** The `fastgen serve` this process started (its only child running `serve`). */
function servePid(): number {
  for (const [pid, parent] of parents()) {
    if (parent !== process.pid) continue;
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    if (cmd.includes("serve")) return pid;
  }
  throw new Error("soak: cannot find the fastgen serve child process");
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** PASS/FAIL and why, from the samples (the first window is the warm-up). */
export function soakVerdict(samples: Sample[], finalRssMiB: number, failed: number): { pass: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (failed > 0) reasons.push(`${failed} requests failed or were lost`);
  const windows = samples.filter((s) => s.windowRequests > 0);
  if (windows.length >= 2 && windows.at(-1)!.windowRequests < 20) windows.splice(-2, 2, { ...windows.at(-2)!, p99Ms: Math.max(windows.at(-2)!.p99Ms, windows.at(-1)!.p99Ms) });
  if (windows.length < 3) reasons.push(`only ${windows.length} windows with requests: lower --interval or raise --requests`);
  else {
    const first = windows[1]!.p99Ms;
    const last = windows.at(-1)!.p99Ms;
    if (last > 1.5 * first) reasons.push(`p99 not flat: last window ${last.toFixed(0)} ms > 1.5 x first post-warm-up window ${first.toFixed(0)} ms`);
  }
  const warm = samples[0]?.rssMiB ?? NaN;
  if (!(finalRssMiB <= 1.1 * warm)) reasons.push(`final RSS ${finalRssMiB.toFixed(1)} MiB > 1.1 x post-warm-up ${warm.toFixed(1)} MiB`);
  return { pass: reasons.length === 0, reasons };
}

/** Entry point of `bench soak`. */
export async function main(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv, strict: true,
    options: { requests: { type: "string" }, concurrency: { type: "string" }, interval: { type: "string" }, seed: { type: "string" }, "serve-flags": { type: "string" }, label: { type: "string" }, "out-dir": { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void console.log(SOAK_HELP);
  const count = numberFlag("requests", v.requests) ?? 5000;
  const concurrency = numberFlag("concurrency", v.concurrency) ?? 16;
  const intervalS = numberFlag("interval", v.interval, false) ?? 30;
  const seed = v.seed === undefined ? 1 : Number(v.seed);
  if (!Number.isInteger(seed)) throw new BenchUsageError(`--seed must be an integer, got "${v.seed}"`);
  const label = v.label ?? "demo";
  const specs = soakRequests(count, seed);

  const server = await spawnFastgen({ flags: splitFlags(v["serve-flags"]) });
  const pid = servePid();
  const model = ((await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] }).data[0]!.id;
  const outcomes: Outcome[] = [];
  const samples: Sample[] = [];
  const t0 = performance.now();
  let windowStart = 0; // index into outcomes
  const sample = () => {
    const window = outcomes.slice(windowStart).filter((o) => !o.aborted && !o.error).map((o) => o.latencyMs);
    windowStart = outcomes.length;
    const s: Sample = {
      tS: (performance.now() - t0) / 1000, done: outcomes.length, failed: outcomes.filter((o) => o.error).length, aborted: outcomes.filter((o) => o.aborted).length,
      ...treeRss(pid), windowRequests: window.length, p50Ms: percentile(window, 50), p99Ms: percentile(window, 99),
    };
    samples.push(s);
    console.error(`soak: ${row(s)}`);
  };
  console.error(`soak: ${count} requests, ${concurrency} at once, a sample every ${intervalS} s; fastgen serve pid ${pid} at ${server.url}`);
  const timer = setInterval(sample, intervalS * 1000);
  let finalRss = NaN;
  try {
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < specs.length) outcomes.push(await send(server.url, model, specs[next++]!));
    }));
    clearInterval(timer);
    sample(); // the last (maybe short) window
    await Bun.sleep(1000); // aborted requests' cleanup and the last frees settle
    finalRss = treeRss(pid).rssMiB;
  } finally {
    clearInterval(timer);
    await server.stop();
  }
  const failed = outcomes.filter((o) => o.error);
  const verdict = soakVerdict(samples, finalRss, failed.length);
  console.log(`\n${HEADER}\n${samples.map(row).join("\n")}\nfinal RSS ${finalRss.toFixed(1)} MiB (after all ${count} requests)`);
  for (const f of failed.slice(0, 5)) console.log(`failed ${f.kind}: ${f.error}`);
  console.log(verdict.pass ? "PASS" : `FAIL: ${verdict.reasons.join("; ")}`);
  const path = join(v["out-dir"] ?? join(import.meta.dir, "results"), `soak-${fileSafe(label)}.json`);
  const kinds = Object.fromEntries(MIX.map(([k]) => [k, outcomes.filter((o) => o.kind === k).length]));
  writeFileSync(path, `${JSON.stringify({
    schema: "fastgen-soak/1", command: `bun run bench -- soak ${argv.join(" ")}`, date: new Date().toISOString(), label,
    config: { requests: count, concurrency, intervalS, seed, serveFlags: v["serve-flags"] ?? "" }, kinds,
    samples, finalRssMiB: finalRss, failed: failed.length, aborted: outcomes.filter((o) => o.aborted).length, verdict,
  }, null, 2)}\n`);
  console.log(`wrote ${path}`);
  if (!verdict.pass) process.exitCode = 1;
}

const HEADER = "    t s   done  failed  aborted  RSS MiB  front MiB  window n  p50 ms  p99 ms";
function row(s: Sample): string {
  const f = (x: number, w: number, d = 0) => (Number.isNaN(x) ? "-" : x.toFixed(d)).padStart(w);
  return `${f(s.tS, 7)} ${f(s.done, 6)} ${f(s.failed, 7)} ${f(s.aborted, 8)} ${f(s.rssMiB, 8, 1)} ${f(s.frontMiB, 10, 1)} ${f(s.windowRequests, 9)} ${f(s.p50Ms, 7)} ${f(s.p99Ms, 7)}`;
}
