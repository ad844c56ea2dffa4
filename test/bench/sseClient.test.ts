// The streamed-completion client against a scripted SSE server: events split across reads, CRLF
// separators, several tokens in one event (logprobs), text-only counting with usage, errors.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import type { ClientMode } from "../../bench/load/sseClient";
import { completionBody, streamCompletion } from "../../bench/load/sseClient";

/** What the scripted server sends next: raw byte pieces (sent with pauses between), or a status + body. */
let script: { pieces?: string[]; status?: number; body?: string } = {};
let lastBody: Record<string, unknown> = {};
let server: Server<undefined>;
let baseUrl = "";

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      lastBody = (await req.json()) as Record<string, unknown>;
      if (script.status !== undefined) return new Response(script.body ?? "", { status: script.status });
      const pieces = script.pieces ?? [];
      const enc = new TextEncoder();
      const stream = new ReadableStream<Uint8Array>({
        async start(c) {
          for (const p of pieces) {
            c.enqueue(enc.encode(p));
            await Bun.sleep(3); // separate reads; nothing asserts on the gaps
          }
          c.close();
        },
      });
      return new Response(stream, { headers: { "content-type": "text/event-stream" } });
    },
  });
  baseUrl = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop(true));

const ev = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const chunk = (text: string, tokens?: string[], finish: string | null = null) => ({
  choices: [{ index: 0, text, logprobs: tokens ? { tokens, token_logprobs: tokens.map(() => -1) } : null, finish_reason: finish }],
});
const LOGPROBS: ClientMode = { prompt: "ids", logprobs: true };
const TEXT: ClientMode = { prompt: "text", logprobs: false };

describe("streamCompletion", () => {
  test("the body: ids prompt, exact length asked (ignore_eos + max_tokens), streamed with usage, logprobs 0", async () => {
    script = { pieces: [ev(chunk("a", ["a"], "length")), "data: [DONE]\n\n"] };
    await streamCompletion({ baseUrl }, "m", [1, 2, 3], 1, LOGPROBS);
    expect(lastBody).toEqual(completionBody("m", [1, 2, 3], 1, LOGPROBS));
    expect(lastBody).toMatchObject({ model: "m", prompt: [1, 2, 3], max_tokens: 1, ignore_eos: true, stream: true, stream_options: { include_usage: true }, logprobs: 0 });
    expect(completionBody("m", "hi", 4, TEXT).logprobs).toBeUndefined();
  });

  test("logprobs count tokens per event, across split reads and CRLF separators", async () => {
    const second = ev(chunk("b", ["b"]));
    script = {
      pieces: [
        ev(chunk("a", ["a"])),
        second.slice(0, 10), // one event split over two reads
        second.slice(10),
        ev(chunk("", ["<0xE2>"])).replace(/\n/g, "\r\n"), // no text yet (half a character): still a token
        ev(chunk("€d", ["<0x82><0xAC>", "d"], "length")), // two tokens in one event
        ev({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } }),
        "data: [DONE]\n\n",
      ],
    };
    const t = await streamCompletion({ baseUrl }, "m", [1, 2, 3], 5, LOGPROBS);
    expect(t.error).toBeUndefined();
    expect(t.status).toBe(200);
    expect(t.tokenMs).toHaveLength(5);
    expect(t.promptTokens).toBe(3);
    for (let i = 1; i < t.tokenMs.length; i++) expect(t.tokenMs[i]!).toBeGreaterThanOrEqual(t.tokenMs[i - 1]!);
    expect(t.tokenMs[3]).toBe(t.tokenMs[4]!); // the two tokens of one event arrived together
    expect(t.tokenMs[0]!).toBeGreaterThanOrEqual(t.startMs);
    expect(t.endMs).toBeGreaterThanOrEqual(t.tokenMs[4]!);
  });

  test("without logprobs an event with text is a token; tokens usage adds arrive with the end", async () => {
    script = {
      pieces: [
        ev(chunk("a")),
        ev(chunk("")), // nothing to count
        ev(chunk("b", undefined, "length")),
        ev({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 } }),
        "data: [DONE]\n\n",
      ],
    };
    const t = await streamCompletion({ baseUrl }, "m", "some text", 4, TEXT);
    expect(t.error).toBeUndefined();
    expect(t.tokenMs).toHaveLength(4);
    expect(t.tokenMs[2]).toBe(t.endMs);
    expect(t.tokenMs[3]).toBe(t.endMs);
    expect(t.promptTokens).toBe(9);
  });

  test("an HTTP error is reported with the server's message", async () => {
    script = { status: 400, body: JSON.stringify({ error: { message: "'prompt' must be a string", type: "invalid_request_error" } }) };
    const t = await streamCompletion({ baseUrl }, "m", [1], 2, LOGPROBS);
    expect(t.status).toBe(400);
    expect(t.error).toBe("HTTP 400: 'prompt' must be a string");
    expect(t.tokenMs).toEqual([]);
  });

  test("an error event inside the stream is reported", async () => {
    script = { pieces: [ev(chunk("a", ["a"])), ev({ error: { message: "engine failed", type: "server_error" } }), "data: [DONE]\n\n"] };
    const t = await streamCompletion({ baseUrl }, "m", [1], 2, LOGPROBS);
    expect(t.error).toBe("stream error: engine failed");
    expect(t.tokenMs).toHaveLength(1);
  });

  test("an unreachable server is an error, not a throw", async () => {
    const t = await streamCompletion({ baseUrl: "http://127.0.0.1:1" }, "m", [1], 2, LOGPROBS);
    expect(t.error).toStartWith("request failed:");
  });
});
