import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TestServer } from "./testServer";
import { startTestServer, waitFor } from "./testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({}, { delayMs: 10 });
});
afterAll(() => t.close());

describe("a client that goes away aborts its engine request", () => {
  test("mid-stream (openai client abort)", async () => {
    const stream = await t.client.chat.completions.create({
      model: "fake-model", messages: [{ role: "user", content: "x" }], max_tokens: 200, stream: true,
    });
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 3) break; // breaking aborts the HTTP request
    const id = t.engine.requests.at(-1)!.requestId;
    await waitFor(() => t.engine.aborted.includes(id));
    expect(t.engine.closed).toContain(id);
    await waitFor(() => t.server.context.metrics.inFlight === 0);
  });

  test("mid-stream with n > 1 and several prompts: every engine request aborts", async () => {
    const ac = new AbortController();
    const res = await fetch(`${t.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: ["a", "b"], n: 2, max_tokens: 200, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    const ids = t.engine.requests.slice(-2).map((r) => r.requestId);
    expect(new Set(ids).size).toBe(2);
    ac.abort();
    await waitFor(() => ids.every((id) => t.engine.aborted.includes(id)));
  });

  test("while waiting for a non-streamed answer", async () => {
    const ac = new AbortController();
    const pending = fetch(`${t.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: "x", max_tokens: 200 }),
      signal: ac.signal,
    }).catch((e) => e);
    await waitFor(() => t.engine.requests.length > 0 && !t.engine.closed.includes(t.engine.requests.at(-1)!.requestId));
    const id = t.engine.requests.at(-1)!.requestId;
    await Bun.sleep(30);
    ac.abort();
    expect(await pending).toBeInstanceOf(Error);
    await waitFor(() => t.engine.aborted.includes(id));
  });

  test("a request that finishes normally is not aborted", async () => {
    const res = await t.client.completions.create({ model: "fake-model", prompt: "x", max_tokens: 3, stream: true });
    for await (const _ of res);
    const id = t.engine.requests.at(-1)!.requestId;
    await waitFor(() => t.engine.closed.includes(id));
    expect(t.engine.aborted).not.toContain(id);
  });
});
