// SIGTERM while streams with several choices are in flight: every accepted stream ends whole,
// with each choice's last token and [DONE]. (The drain used to close connections as soon as the
// generations were over, cutting the last events of n > 1 streams still on their way out.)
import { afterEach, expect, test } from "bun:test";
import type { ServeProcess } from "./helpers";
import { spawnServe } from "./helpers";

let server: ServeProcess | null = null;
afterEach(async () => {
  await server?.stop("SIGKILL");
  server = null;
});

const N_STREAMS = 16;
const N = 8;
const MAX_TOKENS = 100;

/** A streamed completion with n choices; resolves with its events once its first chunk is in. */
async function openStream(url: string) {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "The", n: N, max_tokens: MAX_TOKENS, ignore_eos: true, stream: true }),
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = decoder.decode((await reader.read()).value, { stream: true });
  const rest = async () => {
    try {
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value, { stream: true });
    } catch {} // a cut stream: what arrived is judged below
    return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice("data: ".length));
  };
  return { rest };
}

test("SIGTERM with n=8 streams in flight: each ends with every choice finished and [DONE]; exit 0", async () => {
  server = await spawnServe(["--shutdown-timeout", "30"]);
  const streams = await Promise.all(Array.from({ length: N_STREAMS }, () => openStream(server!.url)));
  server.proc.kill("SIGTERM");
  for (const s of streams) {
    const events = await s.rest();
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const finished = chunks.filter((c) => c.choices[0].finish_reason === "length").map((c) => c.choices[0].index);
    expect(finished.sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
  }
  expect(await server.proc.exited).toBe(0);
  expect(server.stderr.join("\n")).not.toContain("stopped at the shutdown deadline");
}, 30_000);
