import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import type { TestServer } from "./testServer";
import { startTestServer } from "./testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ apiKey: "sk-test-123" });
});
afterAll(() => t.close());

describe("--api-key", () => {
  test("the right key works through the openai client", async () => {
    const models = await t.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["fake-model"]);
    const res = await t.client.completions.create({ model: "fake-model", prompt: "x", max_tokens: 2 });
    expect(res.choices[0]!.text).toBe("Re");
  });

  test("a wrong key is a 401 AuthenticationError", async () => {
    const wrong = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
    const err = await wrong.chat.completions.create({ model: "fake-model", messages: [{ role: "user", content: "x" }] }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.code).toBe("invalid_api_key");
    expect(t.engine.requests).toHaveLength(1); // only the authorized completion reached the engine
  });

  test.each(["/v1/models", "/metrics", "/version", "/v1/nowhere"])("GET %s without a key is 401", async (path) => {
    const res = await fetch(`${t.url}${path}`);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    const body = (await res.json()) as { error: { type: string } };
    expect(body.error.type).toBe("authentication_error");
  });

  test.each(["/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"])("POST %s without a key is 401", async (path) => {
    const res = await fetch(`${t.url}${path}`, { method: "POST", body: "{}" });
    expect(res.status).toBe(401);
  });

  test("a key that is a prefix of the real one is refused", async () => {
    const res = await fetch(`${t.url}/v1/models`, { headers: { authorization: "Bearer sk-test-12" } });
    expect(res.status).toBe(401);
  });

  test("/health needs no key", async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });
});
