// Graceful shutdown of `fastgen serve` (a child process on the demo model) on SIGTERM: it stops
// accepting at once, lets in-flight requests finish within --shutdown-timeout, stops the ones
// still running past it (finish_reason "abort", then [DONE]), frees the engine and exits 0.
import { afterEach, describe, expect, test } from "bun:test";
import type { ServeProcess } from "./helpers";
import { spawnServe } from "./helpers";

let server: ServeProcess | null = null;
afterEach(async () => {
  await server?.stop("SIGKILL");
  server = null;
});

/** A streamed completion: resolves once its first chunk arrived; `rest` reads it to the end. */
async function openStream(url: string, body: Record<string, unknown>) {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: true }),
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = decoder.decode((await reader.read()).value, { stream: true });
  const rest = async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const events = text.split("\n\n").filter((e) => e.trim() !== "").map((e) => e.slice("data: ".length));
    const chunks = events.filter((e) => e !== "[DONE]").map((e) => JSON.parse(e));
    return { events, finish: chunks.map((c) => c.choices?.[0]?.finish_reason).filter(Boolean) as string[] };
  };
  return { rest };
}

const refused = (url: string) => fetch(`${url}/health`).then(() => false, () => true);

describe("SIGTERM", () => {
  test("in-flight requests finish; new connections are refused; exit 0", async () => {
    server = await spawnServe(["--shutdown-timeout", "20", "--log-format", "json"]);
    const { url } = server;
    const streams = await Promise.all([1, 2, 3].map(() => openStream(url, { prompt: "The", max_tokens: 60, ignore_eos: true, temperature: 0 })));
    const whole = fetch(`${url}/v1/completions`, {
      method: "POST", body: JSON.stringify({ prompt: "The", max_tokens: 60, ignore_eos: true }),
    }).then((r) => r.json());
    await Bun.sleep(5);
    server.proc.kill("SIGTERM");
    const exited = server.proc.exited;
    for (const s of streams) {
      const { events, finish } = await s.rest();
      expect(finish).toEqual(["length"]);
      expect(events.at(-1)).toBe("[DONE]");
    }
    expect((await whole).usage.completion_tokens).toBe(60);
    expect(await exited).toBe(0);
    expect(await refused(url)).toBe(true);
    const logs = server.stderr.map((l) => JSON.parse(l));
    const draining = logs.find((l) => l.msg === "SIGTERM, shutting down");
    expect(draining).toMatchObject({ level: "info", deadline_s: 20 });
    expect(draining.open_requests).toBeGreaterThanOrEqual(1); // the drain had work to wait for
    expect(logs.at(-1)).toMatchObject({ msg: "stopped" });
    expect(logs.some((l) => l.level === "warn")).toBe(false); // nothing was cut
    const access = server.stdout.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
    expect(access.filter((l) => l.path === "/v1/completions" && l.finish_reason === "length")).toHaveLength(4);
  });

  test("past --shutdown-timeout the generations are stopped: finish_reason abort, [DONE], exit 0", async () => {
    server = await spawnServe(["--shutdown-timeout", "0.2", "--max-seqs", "1"]);
    const { url } = server;
    // One runs, one waits behind it (max-seqs 1): neither can finish 1000 tokens in 0.2 s.
    const running = await openStream(url, { prompt: "The", max_tokens: 1000, ignore_eos: true });
    const waiting = fetch(`${url}/v1/completions`, {
      method: "POST", body: JSON.stringify({ prompt: "A", max_tokens: 1000, ignore_eos: true }),
    }).then((r) => r.json());
    await Bun.sleep(20);
    const sentAt = performance.now();
    server.proc.kill("SIGTERM");
    const { events, finish } = await running.rest();
    expect(finish).toEqual(["abort"]);
    expect(events.at(-1)).toBe("[DONE]");
    const body = await waiting;
    expect(body.choices[0].finish_reason).toBe("abort");
    expect(body.usage.completion_tokens).toBeLessThan(1000);
    expect(await server.proc.exited).toBe(0);
    expect(performance.now() - sentAt).toBeLessThan(10_000);
    expect(server.stderr.join("\n")).toContain("stopped=2");
  });

  test("a second signal while draining cuts the open connections", async () => {
    server = await spawnServe(["--shutdown-timeout", "60", "--max-seqs", "1"]);
    const stream = await openStream(server.url, { prompt: "The", max_tokens: 1000, ignore_eos: true });
    server.proc.kill("SIGTERM");
    await Bun.sleep(100);
    server.proc.kill("SIGINT");
    await stream.rest().catch(() => null); // cut: it may end without [DONE]
    expect(await server.proc.exited).toBe(0);
    expect(server.stderr.join("\n")).toContain("SIGINT again");
  });
});
