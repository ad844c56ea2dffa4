// Hostile clients on loopback against the HTTP server (over the fake engine): stalled and trickled
// request bodies get 408 and their connections close; open connections are capped (503 past the
// cap, idle keep-alive ones closed first); pipelined requests close the connection (Bun) without
// leaving a generation running. Meanwhile /health answers and other clients are served.
import { afterEach, describe, expect, test } from "bun:test";
import type { TestServer } from "../server/testServer";
import { startTestServer, waitFor } from "../server/testServer";
import { Rng, checkErrorBody, suiteSeed } from "./helpers";
import type { RawClient } from "./rawClient";
import { rawConnect, requestHead, statuses, timedGet } from "./rawClient";

/** Far above a loopback answer (well under 10 ms), far below the hang the attacks caused. */
const BOUNDED_MS = 2000;

let t: TestServer | null = null;
let sockets: RawClient[] = [];
afterEach(async () => {
  for (const s of sockets) s.socket.destroy();
  sockets = [];
  await t?.close();
  t = null;
});

const connect = async (url: string, read = true) => {
  const c = await rawConnect(url, { read });
  sockets.push(c);
  return c;
};

/** The healthy-server check run while an attack holds its connections. */
async function expectServing(s: TestServer): Promise<void> {
  expect(await timedGet(s.url)).toBeLessThan(BOUNDED_MS);
  const t0 = performance.now();
  const res = await s.post("/v1/completions", { prompt: "Hi", max_tokens: 4 });
  expect(res.status).toBe(200);
  expect((await res.json()).usage.completion_tokens).toBe(4);
  expect(performance.now() - t0).toBeLessThan(BOUNDED_MS);
}

describe("request bodies have a deadline", () => {
  test("stalled and trickled bodies get 408 (OpenAI-shaped, Connection: close); the server keeps serving", async () => {
    const rng = new Rng(suiteSeed(25));
    t = await startTestServer({ bodyTimeoutMs: 1000 });
    const body = JSON.stringify({ prompt: "Hello there", max_tokens: 4 });
    const stalled = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const c = await connect(t!.url);
        const cut = rng.int(0, body.length - 1); // headers and part of the body, then silence
        c.write(requestHead("POST", "/v1/completions", { "content-length": body.length }) + body.slice(0, cut));
        return c;
      }),
    );
    const trickled = await connect(t.url);
    trickled.write(requestHead("POST", "/v1/chat/completions", { "transfer-encoding": "chunked" }));
    const drip = setInterval(() => trickled.write("1\r\n \r\n"), 100); // a byte at a time, forever
    try {
      await expectServing(t);
      await Promise.all([...stalled, trickled].map((c) => c.closed));
    } finally {
      clearInterval(drip);
    }
    for (const c of [...stalled, trickled]) {
      expect(statuses(c.received)).toEqual([408]);
      expect(c.received.toLowerCase()).toContain("connection: close");
      const error = checkErrorBody(JSON.parse(c.received.slice(c.received.indexOf("\r\n\r\n") + 4)), "408");
      expect(error).toMatchObject({ type: "invalid_request_error", code: "request_timeout" });
    }
    expect(t.engine.requests).toHaveLength(1); // only the healthy client's request reached the engine
    await expectServing(t);
  });

  test("a body that arrives in time is served; generation outlives the idle timeout", async () => {
    t = await startTestServer({ bodyTimeoutMs: 1000, idleTimeoutS: 1 }, { delayMs: 300 });
    const c = await connect(t.url);
    const body = JSON.stringify({ prompt: "Hi", max_tokens: 8 }); // 8 steps of 300 ms: silent past 1 s
    c.write(requestHead("POST", "/v1/completions", { "content-length": body.length }) + body.slice(0, 5));
    await Bun.sleep(300);
    c.write(body.slice(5));
    await waitFor(() => statuses(c.received).length > 0 && c.received.endsWith("}"), 8000);
    expect(statuses(c.received)).toEqual([200]);
    expect(c.received).toContain('"completion_tokens":8');
  });
});

describe("--max-connections", () => {
  const streamBody = JSON.stringify({ prompt: "Hi", max_tokens: 1000, stream: true });

  test("a request on a new connection past the cap gets 503 with Retry-After; /health still answers; freed slots admit again", async () => {
    t = await startTestServer({ maxConnections: 4 }, { maxModelLen: 4096, delayMs: 5 });
    const busy = await Promise.all(Array.from({ length: 4 }, () => connect(t!.url)));
    for (const c of busy) c.write(requestHead("POST", "/v1/completions", { "content-length": streamBody.length }) + streamBody);
    await waitFor(() => busy.every((c) => statuses(c.received).length === 1));
    const res = await t.post("/v1/completions", { prompt: "Hi", max_tokens: 4 });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("connection")).toBe("close");
    expect(checkErrorBody(await res.json(), "503")).toMatchObject({ type: "overloaded_error", code: "too_many_connections" });
    expect(await timedGet(t.url)).toBeLessThan(BOUNDED_MS); // probes are never refused
    busy[0]!.socket.destroy(); // its generation is aborted and its slot freed
    await waitFor(() => t!.engine.aborted.length === 1);
    await expectServing(t);
  });

  test("idle keep-alive connections are closed to make room", async () => {
    t = await startTestServer({ maxConnections: 4 });
    const idle = await Promise.all(Array.from({ length: 4 }, () => connect(t!.url)));
    for (const c of idle) c.write(requestHead("GET", "/v1/models"));
    await waitFor(() => idle.every((c) => statuses(c.received).length === 1));
    await expectServing(t); // a fifth connection: the idle four are closed for it
    await Promise.all(idle.map((c) => c.closed));
    expect(idle.every((c) => statuses(c.received).length === 1)).toBe(true); // each had its answer
  });
});

describe("HTTP/1.1 pipelining (unsupported: Bun closes the connection)", () => {
  test("requests pipelined behind a generation close the connection; its generation is aborted, not left running", async () => {
    t = await startTestServer({}, { maxModelLen: 4096, delayMs: 5 });
    const c = await connect(t.url);
    const body = JSON.stringify({ prompt: "Hi", max_tokens: 1000, stream: true });
    c.write(requestHead("POST", "/v1/completions", { "content-length": body.length }) + body + requestHead("GET", "/health"));
    await c.closed;
    await waitFor(() => t!.engine.metrics().requestsRunning === 0);
    expect(t.engine.aborted.length + t.engine.closed.length).toBeGreaterThan(0);
    await expectServing(t);
  });
});
