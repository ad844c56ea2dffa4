/**
 * Server options vLLM users expect (fake engine): generation_config.json sampling defaults for
 * unset fields (--generation-config auto|vllm), CORS (--allowed-origins) with its preflight, and
 * hub-cache snapshot directories named by their repository.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { modelNameOf } from "../../src/model/modelName";
import { FakeEngine, charTokenizer } from "../server/fakeEngine";
import type { TestServer } from "../server/testServer";
import { serveEngine } from "../server/testServer";

const GENERATION_CONFIG = { temperature: 0.6, top_p: 0.9, top_k: 20, repetition_penalty: 1.1, max_new_tokens: 5, eos_token_id: 1 };

/** A FakeEngine whose model ships a generation_config.json with sampling defaults. */
class TunedEngine extends FakeEngine {
  override readonly tokenizer = charTokenizer(undefined, GENERATION_CONFIG);
}

describe("generation_config.json sampling defaults", () => {
  let auto: TestServer<TunedEngine>;
  let vllm: TestServer<TunedEngine>;
  beforeAll(async () => {
    auto = await serveEngine(new TunedEngine());
    vllm = await serveEngine(new TunedEngine(), { generationConfig: "vllm" });
  });
  afterAll(async () => {
    await auto.close();
    await vllm.close();
  });
  const chat = { messages: [{ role: "user", content: "Hi" }] };

  test("auto (the default): unset fields take the model's values; max_new_tokens caps max tokens", async () => {
    expect((await auto.post("/v1/chat/completions", chat)).status).toBe(200);
    expect(auto.engine.requests.at(-1)!.sampling).toMatchObject({ temperature: 0.6, topP: 0.9, topK: 20, repetitionPenalty: 1.1, maxTokens: 5 });
    await auto.post("/v1/completions", { prompt: "x", max_tokens: 50 });
    expect(auto.engine.requests.at(-1)!.sampling.maxTokens).toBe(5);
    await auto.post("/v1/responses", { input: "x" });
    expect(auto.engine.requests.at(-1)!.sampling).toMatchObject({ temperature: 0.6, topK: 20, maxTokens: 5 });
  });

  test("a request's own values win", async () => {
    await auto.post("/v1/chat/completions", { ...chat, temperature: 0, top_p: 1, top_k: -1, repetition_penalty: 1, max_tokens: 3 });
    expect(auto.engine.requests.at(-1)!.sampling).toMatchObject({ temperature: 0, topP: 1, topK: -1, repetitionPenalty: 1, maxTokens: 3 });
  });

  test("vllm: neutral defaults, the model's values ignored", async () => {
    await vllm.post("/v1/chat/completions", chat);
    const s = vllm.engine.requests.at(-1)!.sampling;
    expect([s.temperature, s.topP, s.topK, s.repetitionPenalty]).toEqual([undefined, undefined, undefined, undefined]);
    expect(s.maxTokens).toBeGreaterThan(5);
  });
});

describe("CORS", () => {
  let off: TestServer;
  let on: TestServer;
  beforeAll(async () => {
    off = await serveEngine(new FakeEngine());
    on = await serveEngine(new FakeEngine(), { allowedOrigins: ["https://app.example"], apiKey: "k" });
  });
  afterAll(async () => {
    await off.close();
    await on.close();
  });
  const preflight = (url: string, origin: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });

  test("preflight from an allowed origin: 204 with the methods and headers, before the API key check", async () => {
    const res = await preflight(on.url, "https://app.example");
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-headers")).toBe("authorization, content-type");
    expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
  });

  test("answers to an allowed origin carry Access-Control-Allow-Origin; another origin gets none, its preflight a 403", async () => {
    const res = await on.post("/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }, { origin: "https://app.example" });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(res.headers.get("access-control-expose-headers")).toContain("x-request-id");
    const other = await on.post("/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }, { origin: "https://evil.example" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const refused = await preflight(on.url, "https://evil.example");
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("cors_origin_not_allowed");
  });

  test("off by default: no CORS headers, a preflight is not answered", async () => {
    const res = await preflight(off.url, "https://app.example");
    expect(res.status).toBe(404);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("model names", () => {
  test("a hub cache snapshot is named by its repository, other directories by their name", () => {
    expect(modelNameOf("/root/.cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/7ae557604adf67be50417f59c2c2f167def9a775")).toBe("Qwen/Qwen2.5-0.5B-Instruct");
    expect(modelNameOf("/cache/models--gpt2/snapshots/abc/")).toBe("gpt2");
    expect(modelNameOf("/models/fastgen-demo-tiny")).toBe("fastgen-demo-tiny");
    expect(modelNameOf("/x/snapshots/abc")).toBe("abc");
  });
});

