import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import pkg from "../../package.json";
import type { TestServer } from "./testServer";
import { expectHistogram, scrape } from "./prometheusText";
import { startTestServer, waitFor } from "./testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ servedModelName: "my-model" });
});
afterAll(() => t.close());

describe("plain routes", () => {
  test("GET /v1/models lists the served name", async () => {
    const models = await t.client.models.list();
    expect(models.data).toHaveLength(1);
    expect(models.data[0]).toMatchObject({ id: "my-model", object: "model", owned_by: "fastgen", root: "fake-model", max_model_len: 256 });
    const one = await t.client.models.retrieve("my-model");
    expect(one.id).toBe("my-model");
  });

  test("a served name with / and % is found by GET /v1/models/{id}", async () => {
    const other = await startTestServer({ servedModelName: "org/model 50%" });
    try {
      expect((await other.client.models.retrieve("org/model 50%")).id).toBe("org/model 50%");
      expect((await fetch(`${other.url}/v1/models/org%2Fother`)).status).toBe(404);
    } finally {
      await other.close();
    }
  });

  test("the served name is the one requests must use", async () => {
    expect((await t.post("/v1/completions", { model: "my-model", prompt: "x", max_tokens: 1 })).status).toBe(200);
    expect((await t.post("/v1/completions", { model: "fake-model", prompt: "x", max_tokens: 1 })).status).toBe(404);
  });

  test("GET /health and GET /version", async () => {
    const health = await fetch(`${t.url}/health`);
    expect(health.status).toBe(200);
    expect(await fetch(`${t.url}/version`).then((r) => r.json())).toEqual({ version: pkg.version });
  });

  test("POST /tokenize: prompt form and chat form", async () => {
    const res = await t.post("/tokenize", { prompt: "Hi", return_token_strs: true });
    expect(await res.json()).toEqual({ count: 3, max_model_len: 256, tokens: [0, 43, 76], token_strs: ["<s>", "H", "i"] });
    const raw = (await (await t.post("/tokenize", { prompt: "Hi", add_special_tokens: false })).json()) as { tokens: number[]; token_strs: unknown };
    expect(raw.tokens).toEqual([43, 76]);
    expect(raw.token_strs).toBeNull();
    const chat = (await (await t.post("/tokenize", { messages: [{ role: "user", content: "Hi" }] })).json()) as { tokens: number[] };
    expect(t.engine.tokenizer.decode(chat.tokens)).toBe("<s><user>Hi\n<assistant>");
    expect((await t.post("/tokenize", { prompt: "x", messages: [] })).status).toBe(400);
    expect((await t.post("/tokenize", { prompt: "x", model: "other" })).status).toBe(404);
  });

  test("POST /detokenize", async () => {
    const res = await t.post("/detokenize", { tokens: [0, 43, 76] });
    expect(await res.json()).toEqual({ prompt: "<s>Hi" });
    expect((await t.post("/detokenize", { tokens: [1e9] })).status).toBe(400);
    expect((await t.post("/detokenize", {})).status).toBe(400);
    const tooMany = await t.post("/detokenize", { tokens: new Array(t.engine.maxModelLen + 1).fill(43) });
    expect(tooMany.status).toBe(400);
    expect(JSON.stringify(await tooMany.json())).toContain("at most");
  });

  test("GET /metrics: vLLM's names under fastgen:, labelled model_name; counts requests, tokens, latency", async () => {
    const before = await scrape(t.url);
    await t.client.completions.create({ model: "my-model", prompt: "abc", max_tokens: 5 });
    await t.client.completions.create({ model: "my-model", prompt: "abc", n: 2, stop: "Re" }); // 2 tokens a choice, then stop
    await t.post("/v1/completions", { prompt: "x", temperature: 9 });
    const after = await scrape(t.url);
    const delta = (name: string, labels: Record<string, string> = {}) => after.get(name, labels) - before.get(name, labels);
    for (const s of after.samples) expect(s.labels.model_name).toBe("my-model");

    const ok = { endpoint: "/v1/completions", status: "200" };
    expect(after.types.get("fastgen:http_requests_total")).toBe("counter");
    expect(delta("fastgen:http_requests_total", ok)).toBe(2);
    expect(after.get("fastgen:http_requests_total", { endpoint: "/v1/completions", status: "400" })).toBeGreaterThanOrEqual(1);
    expect(delta("fastgen:prompt_tokens_total")).toBe(4 + 4);
    expect(delta("fastgen:generation_tokens_total")).toBe(5 + 2 * 2);
    expect(delta("fastgen:request_success_total", { finished_reason: "length" })).toBe(1);
    expect(delta("fastgen:request_success_total", { finished_reason: "stop" })).toBe(2);
    for (const name of ["fastgen:num_requests_running", "fastgen:num_requests_waiting", "fastgen:kv_cache_usage_perc", "fastgen:requests_in_flight"])
      expect(after.types.get(name)).toBe("gauge");
    for (const name of ["fastgen:prompt_tokens_total", "fastgen:generation_tokens_total", "fastgen:request_success_total", "fastgen:num_preemptions_total"])
      expect(after.types.get(name)).toBe("counter");
    for (const h of ["fastgen:time_to_first_token_seconds", "fastgen:inter_token_latency_seconds", "fastgen:e2e_request_latency_seconds",
      "fastgen:request_queue_time_seconds", "fastgen:iteration_tokens_total"])
      expectHistogram(after, h);
    expect(delta("fastgen:time_to_first_token_seconds_count")).toBe(2); // one per HTTP request
    expect(delta("fastgen:e2e_request_latency_seconds_count")).toBe(2);
    expect(delta("fastgen:inter_token_latency_seconds_count")).toBe(4 + 2 * 1); // gaps between a choice's tokens
    // The fake engine keeps no queue-time or pass histograms: they are there, empty.
    expect(after.get("fastgen:request_queue_time_seconds_count")).toBe(0);
  });

  test("GET /metrics: gauges follow the engine while a request runs", async () => {
    const slow = await startTestServer({}, { delayMs: 10 });
    try {
      const res = await slow.post("/v1/completions", { prompt: "x", max_tokens: 200, stream: true });
      const reader = res.body!.getReader();
      await reader.read();
      const busy = await scrape(slow.url);
      expect(busy.get("fastgen:num_requests_running")).toBe(1);
      expect(busy.get("fastgen:requests_in_flight")).toBe(1);
      expect(busy.get("fastgen:kv_cache_usage_perc")).toBeCloseTo(0.04);
      await reader.cancel();
      await waitFor(() => slow.engine.closed.length === 1);
      const idle = await scrape(slow.url);
      expect(idle.get("fastgen:kv_cache_usage_perc")).toBe(0);
      expect(idle.get("fastgen:requests_in_flight")).toBe(0);
      expect(idle.get("fastgen:request_success_total", { finished_reason: "abort" })).toBe(1);
    } finally {
      await slow.close();
    }
  });
});

describe("GET /health follows the engine", () => {
  test("503 while the engine reports itself unhealthy, 200 again after; 503 when its metrics fail", async () => {
    const h = await startTestServer();
    try {
      h.engine.alive = false;
      const res = await fetch(`${h.url}/health`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("engine_unavailable");
      h.engine.alive = true;
      expect((await fetch(`${h.url}/health`)).status).toBe(200);
      // An engine whose metrics cannot be read is taken for dead.
      h.engine.metrics = () => {
        throw new Error("worker gone");
      };
      const dead = await fetch(`${h.url}/health`);
      expect(dead.status).toBe(503);
      expect(((await dead.json()) as { error: { message: string } }).error.message).toContain("worker gone");
      expect((await fetch(`${h.url}/metrics`)).status).toBe(200);
    } finally {
      await h.close();
    }
  });

  test("a crashed engine worker: the request gets 503, then /health stays 503 and generation is refused", async () => {
    const h = await startTestServer();
    try {
      h.engine.crashAfter = 1;
      h.engine.crashMessage = "engine worker crashed: out of memory";
      const res = await h.post("/v1/completions", { prompt: "x", max_tokens: 10 });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain("engine worker crashed");
      expect((await fetch(`${h.url}/health`)).status).toBe(503);
      h.engine.crashAfter = null;
      const count = h.engine.requests.length;
      expect((await h.post("/v1/chat/completions", { messages: [{ role: "user", content: "x" }] })).status).toBe(503);
      expect(h.engine.requests.length).toBe(count); // never reached the engine
      expect((await h.post("/tokenize", { prompt: "x" })).status).toBe(200); // needs no engine
      const m = await scrape(h.url);
      expect(m.types.has("fastgen:num_requests_running")).toBe(false);
      expect(m.get("fastgen:http_requests_total", { endpoint: "/health", status: "503" })).toBe(1);
    } finally {
      await h.close();
    }
  });
});
