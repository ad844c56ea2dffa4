// Prefix caching end to end: the HTTP server over the real engine (fastgen-demo-tiny, CPU).
// A repeated prompt reports usage.prompt_tokens_details.cached_tokens (whole and streamed),
// /metrics counts prefix-cache queries and hits, a different cache_salt shares nothing, and what
// a request returns (greedy and seeded text, prompt logprobs) is the same whether its prefix
// was cached or not: the same engine with --no-enable-prefix-caching is the reference.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { startEngine } from "../../src/engine/asyncEngine";
import { defaultModelDir } from "../../src/model/defaultModel";
import { scrape } from "./prometheusText";
import type { TestServer } from "./testServer";
import { serveEngine, sseEvents } from "./testServer";

const MODEL = "fastgen-demo-tiny";
// ~100 tokens: several full 16-token blocks.
const PROMPT = "You are a careful assistant. Answer briefly and cite the manual. ".repeat(6) + "Question: what does os.path.join do?";

let cached: AsyncEngine;
let uncached: AsyncEngine;
let on: TestServer<AsyncEngine>;
let off: TestServer<AsyncEngine>;
beforeAll(async () => {
  const opts = { backend: "cpu" as const, kvBlocks: 256, blockSize: 16 };
  cached = await startEngine(defaultModelDir(), opts);
  uncached = await startEngine(defaultModelDir(), { ...opts, enablePrefixCaching: false });
  on = await serveEngine(cached);
  off = await serveEngine(uncached);
});
afterAll(async () => {
  await on?.close();
  await off?.close();
  await cached?.shutdown();
  await uncached?.shutdown();
});

interface CompletionBody {
  choices: { text: string; logprobs: { token_logprobs: (number | null)[]; tokens: string[] } | null }[];
  usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

async function complete(t: TestServer<AsyncEngine>, body: Record<string, unknown>): Promise<CompletionBody> {
  const res = await t.post("/v1/completions", { model: MODEL, prompt: PROMPT, max_tokens: 12, temperature: 0, ...body });
  expect(res.status).toBe(200);
  return (await res.json()) as CompletionBody;
}

describe("prefix caching over HTTP", () => {
  test("a repeated prompt is served from the cache, with the same greedy and seeded text; /metrics counts it", async () => {
    const before = await scrape(on.url);
    const first = await complete(on, {});
    expect(first.usage.prompt_tokens_details.cached_tokens).toBe(0);
    const second = await complete(on, {});
    const promptTokens = second.usage.prompt_tokens;
    // Every full block before the last prompt token: the last one is always recomputed.
    expect(second.usage.prompt_tokens_details.cached_tokens).toBe(Math.floor((promptTokens - 1) / 16) * 16);
    expect(second.choices[0]!.text).toBe(first.choices[0]!.text);
    expect((await complete(off, {})).choices[0]!.text).toBe(first.choices[0]!.text);
    const seeded = { temperature: 0.9, seed: 7, max_tokens: 16 };
    expect((await complete(on, seeded)).choices[0]!.text).toBe((await complete(off, seeded)).choices[0]!.text);
    const after = await scrape(on.url);
    const delta = (name: string) => after.get(name) - before.get(name);
    expect(delta("fastgen:prefix_cache_queries_total")).toBe(3 * promptTokens);
    expect(delta("fastgen:prefix_cache_hits_total")).toBe(2 * second.usage.prompt_tokens_details.cached_tokens);
    expect((await scrape(off.url)).get("fastgen:prefix_cache_hits_total")).toBe(0);
  });

  test("streamed usage carries cached_tokens; chat too", async () => {
    const res = await on.post("/v1/completions", {
      model: MODEL, prompt: PROMPT, max_tokens: 4, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    const events = await sseEvents(res);
    const last = JSON.parse(events[events.length - 2]!) as CompletionBody;
    expect(last.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    const chat = async () => {
      const r = await on.post("/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: PROMPT }], max_tokens: 4, temperature: 0 });
      return (await r.json()) as CompletionBody & { choices: { message: { content: string } }[] };
    };
    const a = await chat();
    const b = await chat();
    expect(b.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
  });

  test("/v1/responses reports input_tokens_details.cached_tokens, whole and streamed", async () => {
    const input = `(responses ${crypto.randomUUID()}) ${PROMPT}`; // a prefix no other test cached
    const respond = async (stream: boolean) => {
      const r = await on.post("/v1/responses", { model: MODEL, input, max_output_tokens: 4, temperature: 0, stream });
      expect(r.status).toBe(200);
      if (!stream) return ((await r.json()) as { usage: { input_tokens_details: { cached_tokens: number } } }).usage;
      // named events: "event: <type>\ndata: <json>"
      const datas = (await r.text()).split("\n\n").map((e) => e.split("\n").find((l) => l.startsWith("data: "))?.slice(6)).filter((d) => d !== undefined);
      const done = datas.map((d) => JSON.parse(d!)).find((e) => e.type === "response.completed" || e.type === "response.incomplete");
      return done.response.usage as { input_tokens_details: { cached_tokens: number } };
    };
    expect((await respond(false)).input_tokens_details.cached_tokens).toBe(0);
    expect((await respond(false)).input_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect((await respond(true)).input_tokens_details.cached_tokens).toBeGreaterThan(0);
  });

  test("requests with different cache salts never share blocks", async () => {
    const prompt = `Tenant notes ${crypto.randomUUID()}. `.repeat(8);
    expect((await complete(on, { prompt, cache_salt: "tenant-a" })).usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect((await complete(on, { prompt, cache_salt: "tenant-b" })).usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect((await complete(on, { prompt })).usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect((await complete(on, { prompt, cache_salt: "tenant-a" })).usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    const bad = await on.post("/v1/completions", { model: MODEL, prompt, max_tokens: 2, cache_salt: "" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("cache_salt");
  });

  test("prompt logprobs with the prefix cached equal those without the cache", async () => {
    await complete(on, { max_tokens: 1 }); // the prompt is cached now
    const ask = { echo: true, logprobs: 2, max_tokens: 4 };
    const withCache = await complete(on, ask);
    const without = await complete(off, ask);
    expect(withCache.choices[0]!.logprobs!.tokens).toEqual(without.choices[0]!.logprobs!.tokens);
    expect(withCache.choices[0]!.logprobs!.token_logprobs).toEqual(without.choices[0]!.logprobs!.token_logprobs);
    expect(withCache.choices[0]!.text).toBe(without.choices[0]!.text);
  });
});
