/**
 * `fastgen serve` (no replicas) runs its engine in a supervised child process. When that child
 * dies (the test-only hook FASTGEN_DEBUG_CRASH_ON_PROMPT aborts it, like a native segfault), the
 * server stays up: in-flight requests fail with a clear 503 (engine_crashed), /health answers 503
 * until the child is back, then 200, and new requests are served. A crash with one request in
 * flight quarantines it (422 for an identical one); with several, none is refused yet.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ServeProcess } from "./helpers";
import { checkErrorBody, spawnServe } from "./helpers";

const POISON = [9, 9, 9, 9];
let server: ServeProcess;

beforeAll(async () => {
  const before = process.env.FASTGEN_DEBUG_CRASH_ON_PROMPT;
  process.env.FASTGEN_DEBUG_CRASH_ON_PROMPT = POISON.join(","); // inherited by the engine child
  try {
    server = await spawnServe(["--threads", "1"], 60_000);
  } finally {
    if (before === undefined) delete process.env.FASTGEN_DEBUG_CRASH_ON_PROMPT;
    else process.env.FASTGEN_DEBUG_CRASH_ON_PROMPT = before;
  }
}, 90_000);

afterAll(async () => {
  await server?.stop();
});

const complete = (prompt: unknown, extra: Record<string, unknown> = {}) =>
  fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: 4, ...extra }),
  });

const health = async () => (await fetch(`${server.url}/health`)).status;

/** Waits for /health to answer 200; returns the statuses seen on the way. */
async function healthUntilUp(ms: number): Promise<number[]> {
  const seen: number[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    seen.push(await health());
    if (seen.at(-1) === 200 || Date.now() > deadline) return seen;
    await Bun.sleep(50);
  }
}

/** Reads an SSE response to its end: its events (without "data: "). */
async function events(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split("\n\n").filter((e) => e.trim() !== "").map((e) => e.slice("data: ".length));
}

describe("the engine child crashes", () => {
  test("the request fails clearly, /health goes 503 then 200, new requests are served", async () => {
    expect(await health()).toBe(200);
    const res = await complete(POISON);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    const err = checkErrorBody(await res.json(), "crash");
    expect(err.code).toBe("engine_crashed");
    expect(err.message).toContain("The engine crashed while running this request and is restarting");
    const seen = await healthUntilUp(30_000);
    expect(seen[0]).toBe(503); // the child takes at least the backoff (0.5 s) to come back
    expect(seen.at(-1)).toBe(200);
    const ok = await complete("Hello", { ignore_eos: true });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { choices: { finish_reason: string }[] }).choices[0]!.finish_reason).toBe("length");
  }, 40_000);

  test("the sole suspect of a crash is quarantined: an identical request gets 422", async () => {
    const res = await complete(POISON);
    expect(res.status).toBe(422);
    expect(checkErrorBody(await res.json(), "quarantined").code).toBe("request_quarantined");
    expect(await health()).toBe(200); // refused before it reached the engine
  });

  test("a stream in flight when it crashes ends with an engine_crashed error event; it is not quarantined", async () => {
    const stream = await complete("The", { max_tokens: 1000, ignore_eos: true, stream: true });
    expect(stream.status).toBe(200);
    const ended = events(stream);
    await Bun.sleep(50);
    const poison = await complete(POISON, { max_tokens: 5 }); // another fingerprint: not refused
    expect(poison.status).toBe(503);
    const all = await ended;
    expect(all.at(-1)).toBe("[DONE]");
    expect(checkErrorBody(JSON.parse(all.at(-2)!), "stream").code).toBe("engine_crashed");
    expect((await healthUntilUp(30_000)).at(-1)).toBe(200);
    // Two requests were in flight, so neither is refused: the identical stream request runs again.
    const controller = new AbortController();
    const again = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "The", max_tokens: 1000, ignore_eos: true, stream: true }),
      signal: controller.signal,
    });
    expect(again.status).toBe(200);
    controller.abort();
    expect(server.stderr.join("\n")).toMatch(/engine crashed .* with 2 requests in flight/);
  }, 40_000);
});
