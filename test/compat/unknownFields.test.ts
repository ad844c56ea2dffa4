/**
 * Unknown request fields are ignored and logged once per name (vLLM's behaviour), while known
 * fields with unsupported values keep their 400; stream_options.continuous_usage_stats.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { memoryLogger } from "../reliability/helpers";
import type { TestServer } from "../server/testServer";
import { sseEvents, startTestServer } from "../server/testServer";

const log = memoryLogger();
let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ logger: log.logger });
});
afterAll(() => t.close());

const warnings = (field: string) => log.err.filter((l) => l.level === "warn" && l.field === field);

describe("unknown fields", () => {
  test("are accepted on every endpoint, and each name is logged once", async () => {
    const chat = { messages: [{ role: "user", content: "Hi" }], max_tokens: 2, frobnicate: 1, sdk_future_field: { a: 1 } };
    for (let i = 0; i < 3; i++) expect((await t.post("/v1/chat/completions", chat)).status).toBe(200);
    expect((await t.post("/v1/completions", { prompt: "x", max_tokens: 2, frobnicate: true })).status).toBe(200);
    expect((await t.post("/tokenize", { prompt: "x", frobnicate: 1 })).status).toBe(200);
    expect(warnings("frobnicate").map((l) => l.endpoint)).toEqual(["/v1/chat/completions", "/v1/completions", "/tokenize"]);
    expect(warnings("sdk_future_field")).toHaveLength(1);
    expect(String(warnings("frobnicate")[0]!.msg)).toContain("ignoring unknown field 'frobnicate'");
  });

  test("the log is bounded: a client sending random names cannot flood it", async () => {
    const before = log.err.length;
    for (let i = 0; i < 3; i++) {
      const body: Record<string, unknown> = { prompt: "x", max_tokens: 1 };
      for (let k = 0; k < 200; k++) body[`junk_${i}_${k}`] = 1;
      expect((await t.post("/v1/completions", body)).status).toBe(200);
    }
    expect(log.err.length - before).toBeLessThanOrEqual(257);
    expect(log.err.some((l) => String(l.msg).includes("further ones are ignored"))).toBe(true);
  });

  test("a known field with an unsupported value is still a 400 naming it", async () => {
    const res = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], tools: [{ type: "retrieval" }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe("tools[0].type");
  });
});

describe("stream_options.continuous_usage_stats", () => {
  test("every chunk carries the usage so far", async () => {
    const res = await t.post("/v1/chat/completions", {
      messages: [{ role: "user", content: "Hi" }], max_tokens: 4, stream: true, stream_options: { include_usage: true, continuous_usage_stats: true },
    });
    const chunks = (await sseEvents(res)).filter((e) => e !== "[DONE]").map((e) => JSON.parse(e));
    const counts = chunks.map((c) => c.usage.completion_tokens);
    expect(counts[0]).toBe(0);
    expect(counts.at(-1)).toBe(4);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]);
    expect(chunks.every((c) => c.usage.prompt_tokens > 0)).toBe(true);
  });

  test("completions too; without it usage is null until the last chunk", async () => {
    const on = (await sseEvents(await t.post("/v1/completions", { prompt: "x", max_tokens: 3, stream: true, stream_options: { include_usage: true, continuous_usage_stats: true } })))
      .filter((e) => e !== "[DONE]").map((e) => JSON.parse(e));
    expect(on.map((c) => c.usage.completion_tokens)).toEqual([1, 2, 3, 3]);
    const off = (await sseEvents(await t.post("/v1/completions", { prompt: "x", max_tokens: 3, stream: true, stream_options: { include_usage: true } })))
      .filter((e) => e !== "[DONE]").map((e) => JSON.parse(e));
    expect(off.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(off.at(-1).usage.completion_tokens).toBe(3);
  });
});
