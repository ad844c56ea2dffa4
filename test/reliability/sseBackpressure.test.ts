// Clients that stop reading a stream: once the socket's buffers and the stream's own bounded
// buffer are full, or nothing was read for the stall timeout, the request is aborted and its KV
// freed, instead of generating to max_tokens into memory. Readers that keep up are never cut.
import { afterEach, describe, expect, test } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { startEngine } from "../../src/engine/asyncEngine";
import { defaultModelDir } from "../../src/model/defaultModel";
import { expectKvDrained } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";
import { serveEngine, sseEvents, startTestServer, waitFor } from "../server/testServer";
import type { RawClient } from "./rawClient";
import { rawConnect, requestHead, timedGet } from "./rawClient";
import { memoryLogger } from "./helpers";

/** Far above a loopback answer, far below generating to max_tokens. */
const BOUNDED_MS = 2000;

let t: TestServer<any> | null = null;
let sockets: RawClient[] = [];
afterEach(async () => {
  for (const s of sockets) s.socket.destroy();
  sockets = [];
  await t?.close();
  t = null;
});

/** Sends a streamed completion on a raw socket that never reads its answer. */
async function stalledStream(url: string, body: Record<string, unknown>): Promise<RawClient> {
  const c = await rawConnect(url, { read: false });
  sockets.push(c);
  const json = JSON.stringify({ ...body, stream: true });
  c.write(requestHead("POST", "/v1/completions", { "content-length": json.length }) + json);
  return c;
}

describe("a client that stops reading its stream", () => {
  test("a full buffer aborts the request early; /health and other streams are served meanwhile", async () => {
    const { logger, err } = memoryLogger();
    t = await startTestServer({ logger, streamLimits: { maxBytes: 64 * 1024, stallMs: 30_000 } }, { maxModelLen: 1_000_000 });
    const maxTokens = 200_000;
    await Promise.all([1, 2, 3, 4].map(() => stalledStream(t!.url, { prompt: "Hi", n: 4, max_tokens: maxTokens, ignore_eos: true })));
    await waitFor(() => t!.engine.requests.length === 4);
    expect(await timedGet(t.url)).toBeLessThan(BOUNDED_MS);
    const reader = await t.post("/v1/completions", { prompt: "Hi", n: 2, max_tokens: 2000, ignore_eos: true, stream: true });
    const events = await sseEvents(reader); // reads as fast as it comes: never cut
    expect(events.at(-1)).toBe("[DONE]");
    await waitFor(() => t!.engine.aborted.length === 4, 10_000);
    const engine = t.engine;
    expect(engine.metrics().requestsRunning).toBe(0);
    expect(engine.metrics().generationTokensTotal).toBeLessThan(4 * 4 * maxTokens / 10); // stopped far short of max_tokens
    expect(t.server.context.metrics.inFlight).toBe(0);
    const warned = err.filter((l) => l.msg === "stream aborted: the client stopped reading");
    expect(warned).toHaveLength(4);
    expect(String(warned[0]!.reason)).toContain("bytes unread");
  });

  test("nothing read for the stall timeout aborts it; the KV blocks of the real engine are freed", async () => {
    const engine: AsyncEngine = await startEngine(defaultModelDir(), { backend: "cpu", kvBlocks: 512, blockSize: 16 });
    try {
      t = await serveEngine(engine, { streamLimits: { stallMs: 500 } });
      // 8 samples of 1000 tokens with 20 logprobs each: about 12 MB of events, more than loopback's
      // socket buffers hold (a few MB), so the server sees the client stop reading.
      const c = await stalledStream(t.url, { prompt: "The", n: 8, max_tokens: 1000, ignore_eos: true, logprobs: 20 });
      await waitFor(() => engine.metrics().requestsRunning > 0);
      expect(await timedGet(t.url)).toBeLessThan(BOUNDED_MS);
      await waitFor(() => t!.server.context.metrics.inFlight === 0, 15_000);
      await expectKvDrained(engine);
      expect(engine.metrics().generationTokensTotal).toBeLessThan(8 * 1000);
      c.socket.destroy();
    } finally {
      await t?.close();
      t = null;
      await engine.shutdown();
    }
  }, 30_000);
});
