// The HTTP server over the REAL engine (fastgen-demo-tiny in an engine Worker, CPU backend),
// driven by the official `openai` client: completions and chat, whole and streamed, n, stop,
// logprobs, seeds, and usage and /metrics figures checked against the tokenizer.
import { describe, expect, test } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { expectKvDrained, useDemoServer } from "./demoEngine";
import { expectHistogram, scrape } from "./prometheusText";
import type { TestServer } from "./testServer";

let engine: AsyncEngine;
let t: TestServer<AsyncEngine>;
useDemoServer((e, server) => ((engine = e), (t = server)));

const MODEL = "fastgen-demo-tiny";
const QUESTION = [{ role: "user" as const, content: "What does os.path.join do?" }];

/** Prompt token count as /tokenize reports it (the tokenizer, through the server). */
async function tokenCount(body: Record<string, unknown>): Promise<number> {
  const res = await t.post("/tokenize", body);
  return ((await res.json()) as { count: number }).count;
}

describe("completions (openai client, real engine)", () => {
  test("GET /v1/models", async () => {
    const models = await t.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
    expect(models.data[0]).toMatchObject({ max_model_len: 1024 });
  });

  test("greedy text, finish_reason length, usage from the tokenizer; /metrics agrees with usage", async () => {
    const before = await scrape(t.url);
    const res = await t.client.completions.create({ model: MODEL, prompt: "The", max_tokens: 24, temperature: 0 });
    expect(res.choices[0]!.text.length).toBeGreaterThan(0);
    expect(res.choices[0]!.finish_reason).toBe("length");
    const promptTokens = engine.tokenizer.encode("The", { addSpecialTokens: true }).length;
    expect(promptTokens).toBe(await tokenCount({ prompt: "The" }));
    expect(res.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 24, total_tokens: promptTokens + 24 });

    const after = await scrape(t.url);
    const delta = (name: string, labels: Record<string, string> = {}) => after.get(name, labels) - before.get(name, labels);
    expect(delta("fastgen:prompt_tokens_total")).toBe(promptTokens);
    expect(delta("fastgen:generation_tokens_total")).toBe(24);
    // Each pass feeds prompt tokens or the previous sampled token; the last sampled one is never fed.
    expect(delta("fastgen:iteration_tokens_total_sum")).toBe(promptTokens + 24 - 1);
    expect(delta("fastgen:request_queue_time_seconds_count")).toBe(1);
    expect(delta("fastgen:time_to_first_token_seconds_count")).toBe(1);
    expect(delta("fastgen:inter_token_latency_seconds_count")).toBe(23);
    expect(delta("fastgen:request_success_total", { finished_reason: "length" })).toBe(1);
    expect(after.get("fastgen:kv_cache_usage_perc")).toBe(0);
    for (const h of ["fastgen:request_queue_time_seconds", "fastgen:iteration_tokens_total", "fastgen:time_to_first_token_seconds", "fastgen:inter_token_latency_seconds", "fastgen:e2e_request_latency_seconds"])
      expectHistogram(after, h);
  });

  test("streamed text and usage equal the whole answer", async () => {
    const whole = await t.client.completions.create({ model: MODEL, prompt: "Return a new", max_tokens: 32, temperature: 0 });
    const stream = await t.client.completions.create({
      model: MODEL, prompt: "Return a new", max_tokens: 32, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(whole.choices[0]!.text);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toEqual(whole.usage);
  });

  test("stop strings cut the text where they first appear", async () => {
    const full = (await t.client.completions.create({ model: MODEL, prompt: "The", max_tokens: 40, temperature: 0 })).choices[0]!.text;
    const words = full.split(/\s+/).filter((w) => /^[a-z]{3,}$/.test(w));
    const stop = words[Math.min(2, words.length - 1)]!;
    expect(stop).toBeDefined();
    const res = await t.client.completions.create({ model: MODEL, prompt: "The", max_tokens: 40, temperature: 0, stop: [stop, "\u0000never"] });
    const choice = res.choices[0]! as (typeof res.choices)[0] & { stop_reason: unknown };
    expect(choice.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(choice.finish_reason).toBe("stop");
    expect(choice.stop_reason).toBe(stop);
  });

  test("logprobs: greedy tokens are the top alternative; tokens join to the text", async () => {
    const res = await t.client.completions.create({ model: MODEL, prompt: "The", max_tokens: 12, temperature: 0, logprobs: 3 });
    const { text, logprobs } = res.choices[0]!;
    expect(logprobs!.tokens).toHaveLength(12);
    expect(logprobs!.tokens!.join("")).toBe(text);
    logprobs!.token_logprobs!.forEach((lp, i) => {
      expect(lp).toBeLessThanOrEqual(0);
      const top = logprobs!.top_logprobs![i]!;
      expect(Object.keys(top).length).toBeGreaterThanOrEqual(1);
      expect(Object.keys(top).length).toBeLessThanOrEqual(3);
      expect(Math.max(...Object.values(top))).toBeCloseTo(lp, 4);
      expect(top[logprobs!.tokens![i]!]).toBeCloseTo(lp, 4);
    });
  });

  test("echo + logprobs scores the prompt too (first token null), streamed and not", async () => {
    const prompt = "The module provides";
    const promptIds = (await (await t.post("/tokenize", { model: MODEL, prompt })).json()) as { tokens: number[] };
    const res = await t.client.completions.create({ model: MODEL, prompt, max_tokens: 4, temperature: 0, logprobs: 2, echo: true });
    const { text, logprobs } = res.choices[0]!;
    const P = promptIds.tokens.length;
    expect(text.startsWith(prompt)).toBe(true);
    expect(logprobs!.tokens).toHaveLength(P + 4);
    expect(logprobs!.token_logprobs![0]).toBeNull();
    expect(logprobs!.top_logprobs![0]).toBeNull();
    for (let i = 1; i < P + 4; i++) {
      const lp = logprobs!.token_logprobs![i]!;
      expect(lp).toBeLessThanOrEqual(0);
      expect(Object.keys(logprobs!.top_logprobs![i]!).length).toBeGreaterThanOrEqual(1);
    }
    expect(logprobs!.text_offset![0]).toBe(0);
    let streamed: (number | null)[] = [];
    const stream = await t.client.completions.create({ model: MODEL, prompt, max_tokens: 4, temperature: 0, logprobs: 2, echo: true, stream: true });
    for await (const chunk of stream) streamed = streamed.concat(chunk.choices[0]?.logprobs?.token_logprobs ?? []);
    expect(streamed).toEqual(logprobs!.token_logprobs!);
  });

  test("n samples: n choices with their own seeds, tokens summed in usage", async () => {
    const res = await t.client.completions.create({ model: MODEL, prompt: "The", max_tokens: 16, temperature: 1, seed: 7, n: 3, logprobs: 0 });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(res.choices.map((c) => c.text)).size).toBeGreaterThan(1);
    const tokens = res.choices.reduce((s, c) => s + c.logprobs!.tokens!.length, 0);
    expect(res.usage!.completion_tokens).toBe(tokens);
    expect(res.usage!.prompt_tokens).toBe(1); // counted once for all samples
  });

  test("seed: same seed and temperature 1 give the same text, another seed another", async () => {
    const ask = (seed: number) =>
      t.client.completions.create({ model: MODEL, prompt: "The", max_tokens: 24, temperature: 1, seed }).then((r) => r.choices[0]!.text);
    const [a, b, c] = await Promise.all([ask(11), ask(11), ask(12)]); // concurrent: batched together
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });
});

describe("chat completions (openai client, real engine)", () => {
  test("the ChatML template; usage equals /tokenize of the messages", async () => {
    const res = await t.client.chat.completions.create({ model: MODEL, messages: QUESTION, max_tokens: 48, temperature: 0, logprobs: true });
    const choice = res.choices[0]!;
    expect(choice.message.role).toBe("assistant");
    expect(choice.message.content!.length).toBeGreaterThan(0);
    expect(choice.message.content).not.toContain("<|im_end|>");
    const promptTokens = await tokenCount({ messages: QUESTION });
    // Every sampled token (the closing <|im_end|> too) has a logprob entry.
    const completionTokens = choice.logprobs!.content!.length;
    expect(res.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens });
    if (choice.finish_reason === "length") expect(completionTokens).toBe(48);
    else expect(choice.finish_reason).toBe("stop");
  });

  test("streamed: role first, content joins to the whole answer, usage chunk last", async () => {
    const whole = await t.client.chat.completions.create({ model: MODEL, messages: QUESTION, max_tokens: 40, temperature: 0 });
    const stream = await t.client.chat.completions.create({
      model: MODEL, messages: QUESTION, max_tokens: 40, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(whole.choices[0]!.message.content!);
    expect(chunks.findLast((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason).toBe(whole.choices[0]!.finish_reason);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage!);
  });

  test("top_logprobs: the greedy token leads its alternatives", async () => {
    const res = await t.client.chat.completions.create({ model: MODEL, messages: QUESTION, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 2 });
    for (const lp of res.choices[0]!.logprobs!.content!) {
      expect(lp.top_logprobs).toHaveLength(2);
      expect(lp.top_logprobs[0]!.token).toBe(lp.token);
      expect(lp.top_logprobs[0]!.logprob).toBeCloseTo(lp.logprob, 4);
      expect(lp.top_logprobs[1]!.logprob).toBeLessThanOrEqual(lp.logprob);
      expect(lp.bytes).toEqual(Array.from(new TextEncoder().encode(lp.token)));
    }
  });

  test("n, stop and seed", async () => {
    const ask = (seed: number, n = 1) =>
      t.client.chat.completions.create({ model: MODEL, messages: QUESTION, max_tokens: 24, temperature: 1, seed, n });
    const [x, y, z] = await Promise.all([ask(3, 2), ask(3, 2), ask(4)]);
    expect(x.choices.map((c) => c.message.content)).toEqual(y.choices.map((c) => c.message.content));
    expect(x.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(z.choices[0]!.message.content).not.toBe(x.choices[0]!.message.content);

    const full = (await t.client.chat.completions.create({ model: MODEL, messages: QUESTION, max_tokens: 40, temperature: 0 })).choices[0]!.message.content!;
    const stop = full.split(" ").find((w) => /^[a-z]{3,}$/.test(w))!;
    const cut = await t.client.chat.completions.create({ model: MODEL, messages: QUESTION, max_tokens: 40, temperature: 0, stop });
    expect(cut.choices[0]!.message.content).toBe(full.slice(0, full.indexOf(stop)));
    expect(cut.choices[0]!.finish_reason).toBe("stop");
  });

  test("every KV block is free once the requests are done", async () => {
    await expectKvDrained(engine);
    expect((await scrape(t.url)).get("fastgen:num_requests_running")).toBe(0);
  });
});
