import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import type { TestServer } from "./testServer";
import { sseEvents, startTestServer, waitFor } from "./testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ maxBodyBytes: 4096 }, { maxModelLen: 64 });
});
afterAll(() => t.close());
afterEach(() => {
  t.engine.overloaded = false;
  t.engine.rejectWith = null;
  t.engine.crashAfter = null;
});

const chat = { messages: [{ role: "user", content: "Hi" }], max_tokens: 2 };

/** Status and OpenAI error object of a response; fails if the body is not OpenAI-shaped. */
async function errorOf(res: Response): Promise<{ status: number; error: { message: string; type: string; param: string | null; code: string | null } }> {
  const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(body.error.message).not.toMatch(/\n\s+at /); // no stack traces
  return { status: res.status, error: body.error };
}

describe("400: bad JSON and bad parameters", () => {
  test.each([
    ["{not json", "invalid_json"],
    ["[1, 2]", "invalid_json"],
    ["", "invalid_json"],
  ])("body %p", async (body, code) => {
    const { status, error } = await errorOf(await t.post("/v1/completions", body));
    expect(status).toBe(400);
    expect(error.type).toBe("invalid_request_error");
    expect(error.code).toBe(code);
  });

  test.each([
    ["/v1/completions", { prompt: "x", temperature: 3 }, "temperature"],
    ["/v1/completions", { prompt: "x", temperature: "hot" }, "temperature"],
    ["/v1/completions", { prompt: "x", top_p: 0 }, "top_p"],
    ["/v1/completions", { prompt: "x", top_p: 1.5 }, "top_p"],
    ["/v1/completions", { prompt: "x", n: 0 }, "n"],
    ["/v1/completions", { prompt: "x", n: 1.5 }, "n"],
    ["/v1/completions", { prompt: "x", max_tokens: 0 }, "max_tokens"],
    ["/v1/completions", { prompt: "x", min_tokens: 5, max_tokens: 2 }, "min_tokens"],
    ["/v1/completions", { prompt: "x", stop: 5 }, "stop"],
    ["/v1/completions", { prompt: "x", stop: [""] }, "stop"],
    ["/v1/completions", { prompt: "x", stop: ["a", "b", "c", "d", "e"] }, "stop"],
    ["/v1/completions", { prompt: "x", stop: "s".repeat(1025) }, "stop"],
    ["/v1/completions", { prompt: "x", stop_token_ids: new Array(1025).fill(1) }, "stop_token_ids"],
    ["/v1/completions", { prompt: "x", logprobs: 21 }, "logprobs"],
    ["/v1/completions", { prompt: "x", logit_bias: { abc: 1 } }, "logit_bias"],
    ["/v1/completions", { prompt: "x", logit_bias: { "5": 101 } }, "logit_bias.5"],
    ["/v1/completions", { prompt: "x", stop_token_ids: [-1] }, "stop_token_ids[0]"],
    ["/v1/completions", { prompt: "x", presence_penalty: 2.5 }, "presence_penalty"],
    ["/v1/completions", { prompt: "x", seed: 1.5 }, "seed"],
    ["/v1/completions", { prompt: "x", echo: "yes" }, "echo"],
    ["/v1/completions", { prompt: "x", stream_options: { include_usage: true } }, "stream_options"],
    ["/v1/completions", {}, "prompt"],
    ["/v1/completions", { prompt: [] }, "prompt"],
    ["/v1/completions", { prompt: [1, 100000] }, "prompt[1]"],
    ["/v1/completions", { prompt: [[1], ["a"]] }, "prompt[1][0]"],
    ["/v1/chat/completions", { messages: [] }, "messages"],
    ["/v1/chat/completions", { messages: [{ role: "user" }] }, "messages[0].content"],
    ["/v1/chat/completions", { messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
    ["/v1/chat/completions", { messages: [{ role: "user", content: [{ type: "text" }] }] }, "messages[0].content[0].text"],
    ["/v1/chat/completions", { ...chat, top_logprobs: 2 }, "top_logprobs"],
    ["/v1/chat/completions", { ...chat, logprobs: true, top_logprobs: 21 }, "top_logprobs"],
    ["/v1/chat/completions", { ...chat, max_tokens: 3, max_completion_tokens: 4 }, "max_completion_tokens"],
  ])("%s %j names %s", async (path, body, param) => {
    const { status, error } = await errorOf(await t.post(path, body));
    expect(status).toBe(400);
    expect(error.type).toBe("invalid_request_error");
    expect(error.param).toBe(param);
    expect(error.message).toContain(param.replace(/\[\d+\].*$/, "").split(".")[0]!);
  });
});

describe("400: known parameters with unsupported values are rejected, never ignored", () => {
  test.each([
    ["/v1/chat/completions", { ...chat, tools: [{ type: "retrieval" }] }, "tools[0].type"],
    ["/v1/chat/completions", { ...chat, tool_choice: "auto" }, "tool_choice"],
    ["/v1/chat/completions", { ...chat, response_format: { type: "xml" } }, "response_format.type"],
    ["/v1/chat/completions", { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }, "messages[0].content[0].type"],
    ["/v1/chat/completions", { messages: [{ role: "critic", content: "x" }] }, "messages[0].role"],
    ["/v1/chat/completions", { messages: [{ role: "assistant", content: null, tool_calls: [{ id: "1" }] }] }, "messages[0].tool_calls[0]"],
    ["/v1/completions", { prompt: "x", best_of: 3 }, "best_of"],
    ["/v1/completions", { prompt: "x", suffix: "end" }, "suffix"],
  ])("%s %j", async (path, body, param) => {
    const { status, error } = await errorOf(await t.post(path, body));
    expect(status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.message).toContain(param.split(/[.[]/)[0]!);
  });

  test("null fields count as absent", async () => {
    const res = await t.post("/v1/chat/completions", { ...chat, tools: null, temperature: null, suffix: null });
    expect(res.status).toBe(200);
  });

  test("through the openai client: BadRequestError with param", async () => {
    const err = await t.client.chat.completions
      .create({ model: "fake-model", messages: [{ role: "user", content: "x" }], temperature: 5 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.param).toBe("temperature");
  });
});

describe("400: context length", () => {
  test("prompt + max_tokens beyond maxModelLen", async () => {
    const { status, error } = await errorOf(await t.post("/v1/completions", { prompt: "x".repeat(40), max_tokens: 30 }));
    expect(status).toBe(400);
    expect(error.code).toBe("context_length_exceeded");
    expect(error.message).toContain("64");
  });

  test("a prompt that fills the context on its own", async () => {
    const { status, error } = await errorOf(await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "x".repeat(70) }] }));
    expect(status).toBe(400);
    expect(error.code).toBe("context_length_exceeded");
  });

  test("without max_tokens, chat gets what is left of the context", async () => {
    const res = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "x".repeat(30) }] });
    expect(res.status).toBe(200);
    const req = t.engine.requests.at(-1)!;
    expect(req.sampling.maxTokens + req.promptIds.length).toBe(64);
  });
});

describe("404", () => {
  test("unknown model", async () => {
    const err = await t.client.completions.create({ model: "gpt-4", prompt: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.code).toBe("model_not_found");
    const { status, error } = await errorOf(await t.post("/v1/chat/completions", { ...chat, model: "nope" }));
    expect(status).toBe(404);
    expect(error.param).toBe("model");
    expect((await errorOf(await fetch(`${t.url}/v1/models/nope`))).status).toBe(404);
  });

  test("unknown route, same shape", async () => {
    const { status, error } = await errorOf(await fetch(`${t.url}/v1/embeddings`, { method: "POST", body: "{}" }));
    expect(status).toBe(404);
    expect(error.message).toContain("/v1/embeddings");
    expect((await errorOf(await fetch(`${t.url}/nowhere`))).status).toBe(404);
  });
});

describe("413: oversized body", () => {
  test("by Content-Length", async () => {
    const { status, error } = await errorOf(await t.post("/v1/completions", { prompt: "x".repeat(5000) }));
    expect(status).toBe(413);
    expect(error.code).toBe("request_too_large");
  });

  test("chunked, without Content-Length", async () => {
    const big = new TextEncoder().encode(JSON.stringify({ prompt: "x".repeat(5000) }));
    const body = new ReadableStream({
      start(c) {
        for (let i = 0; i < big.length; i += 1000) c.enqueue(big.slice(i, i + 1000));
        c.close();
      },
    });
    const res = await fetch(`${t.url}/v1/completions`, { method: "POST", body, headers: { "content-type": "application/json" } });
    expect((await errorOf(res)).status).toBe(413);
  });
});

describe("engine refusals", () => {
  test("503 with Retry-After when the engine is overloaded", async () => {
    t.engine.overloaded = true;
    const res = await t.post("/v1/chat/completions", chat);
    expect(res.headers.get("retry-after")).toBe("1");
    const { status, error } = await errorOf(res);
    expect(status).toBe(503);
    expect(error.code).toBe("overloaded");
    const streamed = await t.post("/v1/chat/completions", { ...chat, stream: true });
    expect(streamed.status).toBe(503);
    const err = await t.client.completions.create({ model: "fake-model", prompt: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.status).toBe(503);
  });

  test("400 when the engine rejects the request", async () => {
    t.engine.rejectWith = "too long for the KV pool";
    const { status, error } = await errorOf(await t.post("/v1/completions", { prompt: "x" }));
    expect(status).toBe(400);
    expect(error.code).toBe("request_rejected");
    expect(error.message).toContain("too long for the KV pool");
  });

  test("500 without details when the engine fails", async () => {
    t.engine.crashAfter = 2;
    const origError = console.error;
    console.error = () => {};
    try {
      const { status, error } = await errorOf(await t.post("/v1/completions", { prompt: "x", max_tokens: 10 }));
      expect(status).toBe(500);
      expect(error.type).toBe("server_error");
      expect(error.message).not.toContain("fake engine crashed");
      // Mid-stream: the status is out already, so an error event precedes [DONE].
      const events = await sseEvents(await t.post("/v1/completions", { prompt: "x", max_tokens: 10, stream: true }));
      expect(events.at(-1)).toBe("[DONE]");
      expect(JSON.parse(events.at(-2)!).error.type).toBe("server_error");
    } finally {
      console.error = origError;
    }
  });

  test("503 past maxQueue requests in flight", async () => {
    const q = await startTestServer({ maxQueue: 1 }, { delayMs: 20 });
    try {
      const first = await q.post("/v1/completions", { prompt: "x", max_tokens: 50, stream: true });
      expect(first.status).toBe(200);
      const second = await q.post("/v1/completions", { prompt: "x", max_tokens: 1 });
      expect(second.status).toBe(503);
      expect(second.headers.get("retry-after")).not.toBeNull();
      await first.body!.cancel();
      await waitFor(() => q.server.context.metrics.inFlight === 0);
      expect((await q.post("/v1/completions", { prompt: "x", max_tokens: 1 })).status).toBe(200);
    } finally {
      await q.close();
    }
  });
});
