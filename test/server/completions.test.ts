import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { replyText } from "./fakeEngine";
import type { TestServer } from "./testServer";
import { sseEvents, startTestServer } from "./testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

describe("POST /v1/completions", () => {
  test("a text prompt: text, finish_reason, usage from the tokenizer", async () => {
    const res = await t.client.completions.create({ model: "fake-model", prompt: "Hello", max_tokens: 5 });
    expect(res.object).toBe("text_completion");
    expect(res.id).toStartWith("cmpl-");
    expect(res.model).toBe("fake-model");
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]!.text).toBe("Reply");
    expect(res.choices[0]!.finish_reason).toBe("length");
    // "Hello" is BOS + 5 characters.
    expect(res.usage).toMatchObject({ prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 });
    const req = t.engine.requests.at(-1)!;
    expect(req.promptIds).toEqual(t.engine.tokenizer.encode("Hello"));
    expect(req.sampling.maxTokens).toBe(5);
  });

  test("runs to EOS: finish_reason stop, the whole reply", async () => {
    const res = await t.client.completions.create({ model: "fake-model", prompt: "x", max_tokens: 100 });
    expect(res.choices[0]!.text).toBe(replyText(0));
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.usage!.completion_tokens).toBe(replyText(0).length + 1); // + EOS
  });

  test("defaults to 16 tokens and the served model when model is omitted", async () => {
    const res = await t.post("/v1/completions", { prompt: "x" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model: string; usage: { completion_tokens: number } };
    expect(body.model).toBe("fake-model");
    expect(body.usage.completion_tokens).toBe(16);
  });

  test("prompt forms: list of strings, token ids, lists of token ids", async () => {
    const ids = t.engine.tokenizer.encode("abc");
    const many = await t.client.completions.create({ model: "fake-model", prompt: ["a", "bb"], max_tokens: 3 });
    expect(many.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(many.usage!.prompt_tokens).toBe(2 + 3);
    const one = await t.client.completions.create({ model: "fake-model", prompt: ids, max_tokens: 3 });
    expect(one.usage!.prompt_tokens).toBe(ids.length);
    expect(t.engine.requests.at(-1)!.promptIds).toEqual(ids);
    const lists = await t.client.completions.create({ model: "fake-model", prompt: [ids, [5, 6]], max_tokens: 3 });
    expect(lists.choices).toHaveLength(2);
    expect(lists.usage!.prompt_tokens).toBe(ids.length + 2);
  });

  test("n > 1 with several prompts: index = prompt * n + sample", async () => {
    const res = await t.client.completions.create({ model: "fake-model", prompt: ["a", "b"], n: 2, max_tokens: 7 });
    expect(res.choices.map((c) => [c.index, c.text])).toEqual([
      [0, "Reply 0"],
      [1, "Reply 1"],
      [2, "Reply 0"],
      [3, "Reply 1"],
    ]);
    expect(res.usage!.completion_tokens).toBe(4 * 7);
    expect(res.usage!.prompt_tokens).toBe(4); // each prompt counted once
  });

  test("stop strings cut the text and report stop_reason", async () => {
    const res = await t.client.completions.create({ model: "fake-model", prompt: "x", max_tokens: 100, stop: ["fox", "zzz"] });
    const choice = res.choices[0]! as typeof res.choices[0] & { stop_reason: unknown };
    expect(choice.text).toBe("Reply 0: the quick brown ");
    expect(choice.finish_reason).toBe("stop");
    expect(choice.stop_reason).toBe("fox");
    expect(t.engine.requests.at(-1)!.sampling.stop).toEqual(["fox", "zzz"]);
  });

  test("echo prepends the prompt", async () => {
    const res = await t.client.completions.create({ model: "fake-model", prompt: "Q: ", max_tokens: 5, echo: true });
    expect(res.choices[0]!.text).toBe("Q: Reply");
  });

  test("logprobs: tokens, token_logprobs, top_logprobs, text_offset", async () => {
    const res = await t.client.completions.create({ model: "fake-model", prompt: "x", max_tokens: 3, logprobs: 2 });
    const lp = res.choices[0]!.logprobs!;
    expect(lp.tokens).toEqual(["R", "e", "p"]);
    expect(lp.token_logprobs).toEqual([-0.25, -0.25, -0.25]);
    expect(lp.text_offset).toEqual([0, 1, 2]);
    expect(lp.top_logprobs).toHaveLength(3);
    expect(Object.keys(lp.top_logprobs![0]!)).toHaveLength(2);
    expect(lp.top_logprobs![0]!["R"]).toBe(-0.25);
    expect(t.engine.requests.at(-1)!.sampling.logprobs).toBe(2);
  });

  test("sampling parameters reach the engine", async () => {
    await t.post("/v1/completions", {
      prompt: "x", max_tokens: 4, temperature: 0.5, top_p: 0.9, top_k: 5, min_p: 0.1, seed: 7, min_tokens: 2,
      stop_token_ids: [9], ignore_eos: true, presence_penalty: 0.5, frequency_penalty: -0.5,
      repetition_penalty: 1.1, logit_bias: { "12": -100 }, user: "u1", best_of: 1,
    });
    expect(t.engine.requests.at(-1)!.sampling).toEqual({
      maxTokens: 4, minTokens: 2, temperature: 0.5, topP: 0.9, topK: 5, minP: 0.1, seed: 7, ignoreEos: true,
      stopTokenIds: [9], presencePenalty: 0.5, frequencyPenalty: -0.5, repetitionPenalty: 1.1,
      logitBias: { 12: -100 }, n: 1,
    });
  });

  test("streams text_completion chunks, finish_reason last, usage, then [DONE]", async () => {
    const res = await t.post("/v1/completions", {
      prompt: "x", max_tokens: 4, n: 2, stream: true, stream_options: { include_usage: true },
    });
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const events = await sseEvents(res);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    for (const c of chunks) expect(c.object).toBe("text_completion");
    const usageChunk = chunks.at(-1);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 8, total_tokens: 10 });
    for (const index of [0, 1]) {
      const mine = chunks.slice(0, -1).filter((c) => c.choices[0].index === index);
      expect(mine.map((c) => c.choices[0].text).join("")).toBe(`Repl`);
      expect(mine.at(-1).choices[0].finish_reason).toBe("length");
      for (const c of mine.slice(0, -1)) expect(c.choices[0].finish_reason).toBeNull();
      for (const c of mine) expect(c.usage).toBeNull();
    }
  });

  test("streams through the openai client, echo first", async () => {
    const stream = await t.client.completions.create({ model: "fake-model", prompt: "Q: ", max_tokens: 5, stream: true, echo: true });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe("Q: Reply");
    expect(finish).toBe("length");
  });

  test("streamed logprobs keep counting text offsets", async () => {
    const res = await t.post("/v1/completions", { prompt: "x", max_tokens: 3, logprobs: 0, stream: true });
    const chunks = (await sseEvents(res)).slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.flatMap((c) => c.choices[0].logprobs.text_offset)).toEqual([0, 1, 2]);
    expect(chunks[0].choices[0].logprobs.top_logprobs).toEqual([{ R: -0.25 }]);
  });
});
