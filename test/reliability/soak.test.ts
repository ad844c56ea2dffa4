// Soak: a few thousand mixed requests (completions and chat, streamed and whole, n and prompt
// lists, tokenize) against the real engine (demo model, CPU, max_tokens <= 8), 16 at a time, with
// random cancels and clients that leave mid-stream. Every request the server answered is logged
// exactly once, every finished choice has exactly one finish_reason, the KV cache and the
// server's in-flight count return to zero, and RSS stays flat (a generous bound). Seeded.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { startEngine } from "../../src/engine/asyncEngine";
import { defaultModelDir } from "../../src/model/defaultModel";
import { expectKvDrained } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";
import { serveEngine, waitFor } from "../server/testServer";
import { Rng, memoryLogger, suiteSeed } from "./helpers";

const SEED = suiteSeed(0x50a4);
const WARMUP = 300;
const REQUESTS = 2500;
const CONCURRENCY = 16;
/** RSS may grow this much over the run (allocator slack, JIT), far below a per-request leak. */
const RSS_SLACK_MB = 150;

let engine: AsyncEngine;
let t: TestServer<AsyncEngine>;
let log: ReturnType<typeof memoryLogger>;
beforeAll(async () => {
  console.error(`soak seed ${SEED} (FASTGEN_SEED=${SEED} reproduces it)`);
  // 24 blocks of 4 tokens: 16 clients with up to 4 choices each outgrow it, so preemption happens.
  engine = await startEngine(defaultModelDir(), { backend: "cpu", kvBlocks: 24, blockSize: 4, maxModelLen: 64 });
  log = memoryLogger();
  t = await serveEngine(engine, { logger: log.logger, accessLog: true });
});
afterAll(async () => {
  await t?.close();
  await engine?.shutdown();
});

type Outcome = { id: string; status: number | "cancelled"; choices?: number; finishes?: number[]; completionTokens?: number };
const WORDS = ["The", "module", "os.path.join", "returns", "a", "path", "def", "import", "class", "\n", "🦊", "é"];

/** One random request, run to its end (or its cancel); what the client saw. */
async function oneRequest(r: Rng, i: number): Promise<Outcome> {
  const id = `soak-${i}`;
  const kind = r.pick(["cmpl", "cmpl", "cmpl-stream", "cmpl-stream", "chat", "chat-stream", "chat-stream", "tokenize"] as const);
  const stream = kind.endsWith("stream");
  const text = () => Array.from({ length: r.int(1, 12) }, () => r.pick(WORDS)).join(" ");
  const n = r.chance(0.2) ? 2 : 1;
  const prompts = kind.startsWith("cmpl") && r.chance(0.2) ? [text(), text()] : [text()];
  const sampling = { max_tokens: r.int(1, 8), temperature: r.pick([0, 0.7, 1]), seed: r.int(0, 1000), n, stream, ...(r.chance(0.3) ? { stop: ["e"] } : {}) };
  const [path, body] =
    kind === "tokenize" ? ["/tokenize", { prompt: text() }]
    : kind.startsWith("cmpl") ? ["/v1/completions", { prompt: prompts.length === 1 ? prompts[0] : prompts, ...sampling }]
    : ["/v1/chat/completions", { messages: [{ role: "user", content: text() }], ...sampling }];
  const choices = kind === "tokenize" ? 0 : prompts.length * n;
  const action = r.pick(["finish", "finish", "finish", "finish", "finish", "finish", "cancel", "leave"] as const);
  const ac = new AbortController();
  if (action === "cancel") setTimeout(() => ac.abort(), r.int(0, 15));
  const leaveAfter = r.int(1, 3); // chunks read before a "leave" client goes away
  try {
    const res = await fetch(`${t.url}${path}`, {
      method: "POST", headers: { "content-type": "application/json", "x-request-id": id }, body: JSON.stringify(body), signal: ac.signal,
    });
    if (res.status !== 200) return { id, status: res.status };
    if (!stream) {
      const json = await res.json();
      if (kind === "tokenize") return { id, status: 200 };
      const finishes = new Array<number>(choices).fill(0);
      for (const c of json.choices) if (c.finish_reason) finishes[c.index] = (finishes[c.index] ?? 0) + 1;
      return { id, status: 200, choices, finishes, completionTokens: json.usage.completion_tokens };
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let chunks = 0;
    const finishes = new Array<number>(choices).fill(0);
    let done = false;
    while (!done) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buffered += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffered.indexOf("\n\n")) >= 0) {
        const event = buffered.slice(6, cut);
        buffered = buffered.slice(cut + 2);
        if (event === "[DONE]") {
          done = true;
          break;
        }
        const chunk = JSON.parse(event);
        if (chunk.error) throw new Error(`${id}: error event ${event}`);
        for (const c of chunk.choices) if (c.finish_reason) finishes[c.index] = (finishes[c.index] ?? 0) + 1;
        chunks++;
      }
      if (action === "leave" && chunks >= leaveAfter && !done) {
        await reader.cancel();
        return { id, status: "cancelled" };
      }
    }
    if (!done) throw new Error(`${id}: the stream ended without [DONE]`);
    return { id, status: 200, choices, finishes };
  } catch (e) {
    if (ac.signal.aborted) return { id, status: "cancelled" };
    throw e;
  }
}

async function runMany(from: number, count: number, r: Rng): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = from;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < from + count) out.push(await oneRequest(r, next++));
  }));
  return out;
}

const rssMB = () => process.memoryUsage().rss / 2 ** 20;

describe(`soak (seed ${SEED})`, () => {
  test(`${REQUESTS} mixed requests with cancels and disconnects: each ends once, KV back to zero, RSS flat`, async () => {
    const r = new Rng(SEED);
    await runMany(0, WARMUP, r);
    await waitFor(() => t.server.openRequests === 0, 5000);
    Bun.gc(true);
    const before = rssMB();
    const outcomes = await runMany(WARMUP, REQUESTS, r);
    await waitFor(() => t.server.openRequests === 0, 10_000);
    await expectKvDrained(engine);
    Bun.gc(true);
    const after = rssMB();
    const statuses: Record<string, number> = {};
    for (const o of outcomes) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
    console.error(`soak: ${JSON.stringify(statuses)}; RSS ${before.toFixed(0)} MB -> ${after.toFixed(0)} MB; preemptions ${engine.metrics().preemptionsTotal}`);

    // Every answered request finished its choices exactly once.
    expect(Object.keys(statuses).filter((s) => s !== "200" && s !== "cancelled")).toEqual([]);
    expect(statuses.cancelled ?? 0).toBeGreaterThan(REQUESTS / 20);
    for (const o of outcomes) if (o.status === 200 && o.finishes) expect({ id: o.id, finishes: o.finishes }).toEqual({ id: o.id, finishes: new Array(o.choices).fill(1) });

    // The server logged every request it answered once, cancelled ones at most once.
    const lines = new Map<string, Record<string, unknown>[]>();
    for (const l of log.out) lines.set(l.request_id as string, [...(lines.get(l.request_id as string) ?? []), l]);
    for (const o of outcomes) {
      const got = lines.get(o.id) ?? [];
      if (o.status === "cancelled") expect(got.length).toBeLessThanOrEqual(1);
      else expect({ id: o.id, lines: got.length }).toEqual({ id: o.id, lines: 1 });
      if (o.completionTokens !== undefined) expect(got[0]!.completion_tokens).toBe(o.completionTokens);
    }
    expect(log.out.filter((l) => l.client_gone).length).toBeGreaterThan(0);
    expect(engine.metrics().preemptionsTotal).toBeGreaterThan(0);
    expect(log.err).toEqual([]);
    expect(t.server.context.metrics.inFlight).toBe(0);
    expect(after - before).toBeLessThan(RSS_SLACK_MB);
  }, 120_000);
});
