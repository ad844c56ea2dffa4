// Bounds before work (issue #25): prompts too long for the context are refused from their length
// alone, long prompts are tokenized off the serving thread (so /health and small requests keep
// answering), gRPC messages are capped, and stop strings follow OpenAI's limit and cost linear time.
// `fastgen serve` runs as a child on 127.0.0.1 with the demo model (context 1024 tokens, so prompts
// over ~217K characters cannot fit).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import type { FastGenRpcError } from "../../src/grpc/client";
import { client } from "../../src/grpc/client";
import { MAX_STOP_STRING_CHARS, MAX_STOP_STRINGS } from "../../src/engine/stopStrings";
import type { ServeProcess } from "./helpers";
import { checkErrorBody, Rng, spawnServe, suiteSeed } from "./helpers";

const SEED = suiteSeed(25);
/** Generous for a loaded 2-core CI: the old code held /health 2.2 s here with 4 such requests. */
const HEALTH_BOUND_MS = 1000;

let serve: ServeProcess;
let grpcAddress: string;

beforeAll(async () => {
  serve = await spawnServe([]);
  grpcAddress = serve.stdout.join("\n").match(/grpc:\/\/(\S+)/)![1]!;
});
afterAll(() => serve?.stop());

/** Seeded words: `chars` characters of text a tokenizer splits into ~0.4 tokens a character. */
function words(rng: Rng, chars: number): string {
  const vocab = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "then", "sleeps", "\n"];
  const parts: string[] = [];
  let n = 0;
  while (n < chars) {
    const w = rng.pick(vocab);
    parts.push(w);
    n += w.length + 1;
  }
  return parts.join(" ").slice(0, chars);
}

const post = (path: string, body: unknown) =>
  fetch(`${serve.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

async function expect400(res: Response, param: string, code: string | null = null): Promise<string> {
  const body = await res.json();
  expect({ status: res.status, body }).toMatchObject({ status: 400, body: { error: { param } } });
  const e = checkErrorBody(body, param);
  if (code !== null) expect(e.code).toBe(code);
  return e.message;
}

/** Runs `work` while polling /health; returns its result and the slowest /health answer. */
async function withHealthProbe<T>(work: Promise<T>): Promise<{ result: T; worstHealthMs: number; probes: number }> {
  let done = false;
  let worst = 0;
  let probes = 0;
  const probing = (async () => {
    while (!done) {
      const t0 = performance.now();
      expect((await fetch(`${serve.url}/health`)).status).toBe(200);
      worst = Math.max(worst, performance.now() - t0);
      probes++;
      await Bun.sleep(10);
    }
  })();
  const result = await work.finally(() => (done = true));
  await probing;
  return { result, worstHealthMs: worst, probes };
}

describe("prompts too long for the context are refused from their length, before tokenizing", () => {
  const rng = new Rng(SEED);
  const huge = words(rng, 7_800_000); // under the 8 MiB body limit, ~36x what the context can hold

  test.each([
    ["/v1/completions", "a string prompt", { prompt: huge }, "prompt"],
    ["/v1/completions", "a list of prompts", { prompt: ["hello", huge] }, "prompt[1]"],
    ["/v1/chat/completions", "string content", { messages: [{ role: "user", content: huge }] }, "messages"],
    ["/v1/chat/completions", "a text part", { messages: [{ role: "user", content: [{ type: "text", text: huge }] }] }, "messages"],
    ["/tokenize", "a prompt", { prompt: huge }, "prompt"],
    ["/tokenize", "messages", { messages: [{ role: "user", content: huge }] }, "messages"],
  ])(`%s, %s of 7.8M characters (seed ${SEED}): 400 context_length_exceeded counted in characters`, async (path, _what, body, param) => {
    const message = await expect400(await post(path, body), param, "context_length_exceeded");
    expect(message).toContain("characters");
  });

  test("gRPC: a text over the character bound is INVALID_ARGUMENT; a message over the size limit is RESOURCE_EXHAUSTED", async () => {
    const c = client(grpcAddress);
    try {
      const tooLong = (await c.generate([huge], { max_new_tokens: 1 }).catch((e) => e)) as FastGenRpcError;
      expect({ code: tooLong.code, details: tooLong.details }).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining("characters") });
      const tooBig = (await c.generate(["x".repeat(30_000_000)], { max_new_tokens: 1 }).catch((e) => e)) as FastGenRpcError;
      expect(tooBig.code).toBe(status.RESOURCE_EXHAUSTED);
      // The server is fine afterwards.
      const [ok] = await c.generate(["hello"], { max_new_tokens: 2 });
      expect(ok!.generated_length).toBe(2);
    } finally {
      c.close();
    }
  });
});

describe("long prompts are tokenized off the serving thread", () => {
  test(`4 requests of 36 prompts x 200K characters each: /health and a small request keep answering (seed ${SEED})`, async () => {
    const rng = new Rng(SEED + 1);
    // Each prompt is under the character bound, so each must be tokenized before it is refused.
    const prompts = Array.from({ length: 36 }, () => words(rng, 200_000));
    const big = Promise.all([0, 1, 2, 3].map(() => post("/v1/completions", { prompt: prompts, max_tokens: 1 })));
    const small = (async () => {
      await Bun.sleep(50); // while the big ones are being tokenized
      const res = await post("/v1/completions", { prompt: "hello", max_tokens: 4, ignore_eos: true }); // unseeded: EOS within 4 tokens in ~1 run of 6
      return { status: res.status, body: (await res.json()) as { choices: { finish_reason: string }[] } };
    })();
    const { result, worstHealthMs, probes } = await withHealthProbe(Promise.all([big, small]));
    const [bigReplies, smallReply] = result;
    for (const res of bigReplies) expect(await expect400(res, "prompt[0]", "context_length_exceeded")).toContain("tokens");
    expect(smallReply.status).toBe(200);
    expect(smallReply.body.choices[0]!.finish_reason).toBe("length");
    expect(probes).toBeGreaterThan(1);
    expect(worstHealthMs).toBeLessThan(HEALTH_BOUND_MS);
  });

  test("a long prompt that fits is tokenized in a worker and runs with the same ids /tokenize gives", async () => {
    // Over the inline threshold (8192 characters), yet ~300 tokens: runs of spaces tokenize densely.
    const prompt = " ".repeat(9000);
    const tokenized = (await (await post("/tokenize", { prompt })).json()) as { count: number };
    expect(tokenized.count).toBeLessThan(1000);
    const res = await post("/v1/completions", { prompt, max_tokens: 2 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(tokenized.count);
  });
});

describe("stop strings: OpenAI's limit of 4, each bounded, matched in linear time", () => {
  test.each([
    ["/v1/completions", { prompt: "x", stop: ["a", "b", "c", "d", "e"] }],
    ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], stop: ["a", "b", "c", "d", "e"] }],
    ["/v1/completions", { prompt: "x", stop: ["a", "y".repeat(MAX_STOP_STRING_CHARS + 1)] }],
    ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], stop: "y".repeat(MAX_STOP_STRING_CHARS + 1) }],
  ])("%s: too many or too long stop strings get 400", async (path, body) => {
    await expect400(await post(path, body), "stop");
  });

  test("gRPC: the same limits are INVALID_ARGUMENT", async () => {
    const c = client(grpcAddress);
    try {
      for (const stop of [["a", "b", "c", "d", "e"], ["y".repeat(MAX_STOP_STRING_CHARS + 1)]]) {
        const err = (await c.generate(["x"], { max_new_tokens: 1, stop }).catch((e) => e)) as FastGenRpcError;
        expect(err.code).toBe(status.INVALID_ARGUMENT);
      }
    } finally {
      c.close();
    }
  });

  test(`${MAX_STOP_STRINGS} stop strings of ${MAX_STOP_STRING_CHARS} characters: the request runs to its end and others are served meanwhile`, async () => {
    const rng = new Rng(SEED + 2);
    // Near misses: each stop is the model's kind of text, so prefixes match often but never all of it.
    const stop = Array.from({ length: MAX_STOP_STRINGS }, () => words(rng, MAX_STOP_STRING_CHARS - 1) + "\u0000");
    const long = post("/v1/completions", { prompt: "the quick", max_tokens: 600, ignore_eos: true, stop }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } },
    }));
    const others = (async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await post("/v1/completions", { prompt: "hello", max_tokens: 4, ignore_eos: true }); // unseeded: EOS within 4 tokens in ~1 run of 6
        statuses.push(res.status);
        await res.arrayBuffer();
      }
      return statuses;
    })();
    const { result, worstHealthMs } = await withHealthProbe(Promise.all([long, others]));
    const [longReply, otherStatuses] = result;
    expect(longReply.status).toBe(200);
    expect(longReply.body.choices[0]!.finish_reason).toBe("length");
    expect(longReply.body.usage.completion_tokens).toBe(600);
    expect(otherStatuses).toEqual([200, 200, 200, 200, 200]);
    expect(worstHealthMs).toBeLessThan(HEALTH_BOUND_MS);
  });
});
