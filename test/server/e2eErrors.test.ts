// Error answers and client disconnects over the REAL engine (fastgen-demo-tiny, CPU), with raw
// fetch: 400 / 401 / 404 / 413 / 503 bodies in OpenAI's shape, KV blocks freed when a client goes
// away mid-stream, and /health turning 503 once the engine is gone (the last test).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { expectKvDrained, startDemoEngine } from "./demoEngine";
import { scrape } from "./prometheusText";
import type { TestServer } from "./testServer";
import { serveEngine, waitFor } from "./testServer";

let engine: AsyncEngine;
/** Default options, and the same engine behind servers with a key, a small body limit, a queue of 1. */
let t: TestServer<AsyncEngine>;
let keyed: TestServer<AsyncEngine>;
let small: TestServer<AsyncEngine>;
let queue1: TestServer<AsyncEngine>;
beforeAll(async () => {
  engine = await startDemoEngine();
  t = await serveEngine(engine);
  keyed = await serveEngine(engine, { apiKey: "sk-e2e" });
  small = await serveEngine(engine, { maxBodyBytes: 1024 });
  queue1 = await serveEngine(engine, { maxQueue: 1 });
});
afterAll(async () => {
  for (const s of [t, keyed, small, queue1]) await s?.close();
  await engine?.shutdown();
});

/** A long generation: it runs until the test lets go of it. */
const LONG = { prompt: "The", max_tokens: 1000, temperature: 0, ignore_eos: true, stream: true };

/** Status, headers and OpenAI error object of a response; fails unless the body is OpenAI-shaped. */
async function errorOf(res: Response) {
  const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(body.error.message).not.toMatch(/\n\s+at /);
  return { status: res.status, headers: res.headers, ...body.error };
}

describe("errors over the real engine (raw fetch)", () => {
  test("400: bad JSON, a bad parameter, an unsupported one", async () => {
    expect(await errorOf(await t.post("/v1/completions", "{oops"))).toMatchObject({ status: 400, code: "invalid_json" });
    expect(await errorOf(await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "x" }], temperature: 3 })))
      .toMatchObject({ status: 400, type: "invalid_request_error", param: "temperature" });
    expect(await errorOf(await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "x" }], tools: [{ type: "function" }] })))
      .toMatchObject({ status: 400, param: "tools[0].function" });
  });

  test("401 without the key when --api-key is set; the key works", async () => {
    const res = await keyed.post("/v1/completions", { prompt: "The", max_tokens: 2 }, { authorization: "" });
    expect(await errorOf(res)).toMatchObject({ status: 401, type: "authentication_error" });
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    expect((await keyed.post("/v1/completions", { prompt: "The", max_tokens: 2 })).status).toBe(200);
  });

  test("404 for an unknown model", async () => {
    expect(await errorOf(await t.post("/v1/completions", { model: "gpt-4", prompt: "x" }))).toMatchObject({ status: 404, param: "model", code: "model_not_found" });
  });

  test("400 when prompt + max_tokens pass the context window", async () => {
    const e = await errorOf(await t.post("/v1/completions", { prompt: "The", max_tokens: 1024 }));
    expect(e).toMatchObject({ status: 400, code: "context_length_exceeded" });
    expect(e.message).toContain("1024");
    const long = "import os\n".repeat(400); // well over 1024 tokens on its own
    expect(await errorOf(await t.post("/v1/chat/completions", { messages: [{ role: "user", content: long }] }))).toMatchObject({ status: 400, code: "context_length_exceeded" });
  });

  test("413 for a body over the limit", async () => {
    expect(await errorOf(await small.post("/v1/completions", { prompt: "x".repeat(2000) }))).toMatchObject({ status: 413, code: "request_too_large" });
  });

  test("503 with Retry-After while the server's queue is full; accepted again after", async () => {
    const first = await queue1.post("/v1/completions", LONG);
    expect(first.status).toBe(200);
    const reader = first.body!.getReader();
    await reader.read();
    const busy = await queue1.post("/v1/completions", { prompt: "The", max_tokens: 2 });
    expect(busy.headers.get("retry-after")).toBe("1");
    expect(await errorOf(busy)).toMatchObject({ status: 503, code: "overloaded" });
    await reader.cancel();
    await waitFor(() => queue1.server.context.metrics.inFlight === 0);
    expect((await queue1.post("/v1/completions", { prompt: "The", max_tokens: 2 })).status).toBe(200);
    await expectKvDrained(engine);
  });
});

describe("a client that goes away frees its KV blocks", () => {
  test("mid-stream: the request is aborted; /metrics shows the cache empty again", async () => {
    const before = await scrape(t.url);
    const ac = new AbortController();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 900, ignore_eos: true, stream: true, n: 2 }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    for (let i = 0; i < 4; i++) await reader.read();
    const busy = await scrape(t.url);
    expect(busy.get("fastgen:kv_cache_usage_perc")).toBeGreaterThan(0);
    expect(busy.get("fastgen:num_requests_running")).toBe(2);
    ac.abort();
    await expectKvDrained(engine);
    await waitFor(async () => (await scrape(t.url)).get("fastgen:kv_cache_usage_perc") === 0);
    const after = await scrape(t.url);
    expect(after.get("fastgen:num_requests_running")).toBe(0);
    expect(after.get("fastgen:request_success_total", { finished_reason: "abort" }) - before.get("fastgen:request_success_total", { finished_reason: "abort" })).toBe(2);
    expect(after.get("fastgen:requests_in_flight")).toBe(0);
  });

  test("while waiting for a whole (non-streamed) answer", async () => {
    const ac = new AbortController();
    const pending = fetch(`${t.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ ...LONG, stream: false }),
      signal: ac.signal,
    }).catch((e) => e);
    await waitFor(() => engine.metrics().requestsRunning === 1);
    ac.abort();
    expect(await pending).toBeInstanceOf(Error);
    await expectKvDrained(engine);
  });
});

describe("/health follows the engine", () => {
  test("200 while it runs; once it is shut down, generation gets 503 and so does /health", async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    await engine.shutdown();
    const res = await t.post("/v1/completions", { prompt: "The", max_tokens: 2 });
    expect(await errorOf(res)).toMatchObject({ status: 503, code: "engine_unavailable" });
    const health = await fetch(`${t.url}/health`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { error: { message: string } }).error.message).toMatch(/shut down|unhealthy/);
    expect((await t.post("/tokenize", { prompt: "The" })).status).toBe(200);
    expect((await fetch(`${t.url}/metrics`)).status).toBe(200);
  });
});
