import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { replyText } from "./fakeEngine";
import type { TestServer } from "./testServer";
import { sseEvents, startTestServer } from "./testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

const user = (content: string) => ({ role: "user" as const, content });
/** The fake template: BOS, `<role>content\n` per message, `<assistant>` to prompt. */
const rendered = (body: string, generationPrompt = true) => `<s>${body}${generationPrompt ? "<assistant>" : ""}`;

describe("POST /v1/chat/completions", () => {
  test("renders the chat template; message, finish_reason, usage", async () => {
    const res = await t.client.chat.completions.create({
      model: "fake-model",
      messages: [{ role: "system", content: "Be brief." }, user("Hi")],
      max_tokens: 8,
    });
    expect(res.object).toBe("chat.completion");
    expect(res.id).toStartWith("chatcmpl-");
    expect(res.choices[0]!.message).toEqual({ role: "assistant", content: "Reply 0:" } as never);
    expect(res.choices[0]!.finish_reason).toBe("length");
    const prompt = t.engine.tokenizer.decode(t.engine.requests.at(-1)!.promptIds);
    expect(prompt).toBe(rendered("<system>Be brief.\n<user>Hi\n"));
    const promptTokens = t.engine.requests.at(-1)!.promptIds.length;
    expect(res.usage).toMatchObject({ prompt_tokens: promptTokens, completion_tokens: 8, total_tokens: promptTokens + 8 });
  });

  test("without max_tokens it may fill the context; runs to EOS", async () => {
    const res = await t.client.chat.completions.create({ model: "fake-model", messages: [user("Hi")] });
    expect(res.choices[0]!.message.content).toBe(replyText(0));
    expect(res.choices[0]!.finish_reason).toBe("stop");
    const req = t.engine.requests.at(-1)!;
    expect(req.sampling.maxTokens).toBe(t.engine.maxModelLen - req.promptIds.length);
  });

  test("content as text parts; add_generation_prompt false", async () => {
    await t.client.chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }],
      max_completion_tokens: 2,
      // @ts-expect-error vLLM's extension
      add_generation_prompt: false,
    });
    const req = t.engine.requests.at(-1)!;
    expect(t.engine.tokenizer.decode(req.promptIds)).toBe(rendered("<user>a\nb\n", false));
    expect(req.sampling.maxTokens).toBe(2);
  });

  test("n > 1 gives n choices", async () => {
    const res = await t.client.chat.completions.create({ model: "fake-model", messages: [user("Hi")], n: 3, max_tokens: 7 });
    expect(res.choices.map((c) => [c.index, c.message.content])).toEqual([
      [0, "Reply 0"],
      [1, "Reply 1"],
      [2, "Reply 2"],
    ]);
    expect(res.usage!.completion_tokens).toBe(21);
  });

  test("stop and stop_reason", async () => {
    const res = await t.client.chat.completions.create({ model: "fake-model", messages: [user("Hi")], stop: "quick" });
    expect(res.choices[0]!.message.content).toBe("Reply 0: the ");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect((res.choices[0] as unknown as { stop_reason: string }).stop_reason).toBe("quick");
  });

  test("logprobs + top_logprobs in OpenAI's shape", async () => {
    const res = await t.client.chat.completions.create({
      model: "fake-model", messages: [user("Hi")], max_tokens: 2, logprobs: true, top_logprobs: 3,
    });
    const content = res.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(2);
    expect(content[0]).toEqual({
      token: "R", logprob: -0.25, bytes: [82],
      top_logprobs: [
        { token: "R", logprob: -0.25, bytes: [82] },
        { token: "E", logprob: -2, bytes: [69] },
        { token: "F", logprob: -3, bytes: [70] },
      ],
    });
    // logprobs without top_logprobs: the sampled token only.
    const plain = await t.client.chat.completions.create({ model: "fake-model", messages: [user("Hi")], max_tokens: 1, logprobs: true });
    expect(plain.choices[0]!.logprobs!.content![0]!.top_logprobs).toEqual([]);
    const none = await t.client.chat.completions.create({ model: "fake-model", messages: [user("Hi")], max_tokens: 1 });
    expect(none.choices[0]!.logprobs).toBeNull();
  });

  test("echo continues the last assistant message", async () => {
    const res = await t.post("/v1/chat/completions", {
      messages: [user("Hi"), { role: "assistant", content: "Sure: " }], echo: true, add_generation_prompt: false, max_tokens: 5,
    });
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toBe("Sure: Reply");
  });

  test("streams: role first, content deltas, finish_reason last, usage chunk, [DONE]", async () => {
    const res = await t.post("/v1/chat/completions", {
      messages: [user("Hi")], max_tokens: 5, n: 2, stream: true, stream_options: { include_usage: true },
    });
    const events = await sseEvents(res);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    for (const c of chunks) {
      expect(c.object).toBe("chat.completion.chunk");
      expect(c.id).toBe(chunks[0].id);
    }
    const usage = chunks.at(-1);
    expect(usage.choices).toEqual([]);
    expect(usage.usage.completion_tokens).toBe(10);
    for (const index of [0, 1]) {
      const mine = chunks.slice(0, -1).filter((c) => c.choices[0].index === index);
      expect(mine[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
      for (const c of mine.slice(1)) expect(c.choices[0].delta.role).toBeUndefined();
      expect(mine.map((c) => c.choices[0].delta.content ?? "").join("")).toBe("Reply");
      expect(mine.at(-1).choices[0].finish_reason).toBe("length");
      expect(mine.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    }
  });

  test("streams through the openai client with logprobs", async () => {
    const stream = await t.client.chat.completions.create({
      model: "fake-model", messages: [user("Hi")], stream: true, logprobs: true, top_logprobs: 1,
      stream_options: { include_usage: true },
    });
    let text = "";
    let tokens = 0;
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      text += c.delta.content ?? "";
      tokens += c.logprobs?.content?.length ?? 0;
      finish = c.finish_reason ?? finish;
    }
    expect(text).toBe(replyText(0));
    expect(finish).toBe("stop");
    expect(tokens).toBe(replyText(0).length + 1);
    expect(usage).toMatchObject({ completion_tokens: replyText(0).length + 1 });
  });

  test("response_format text and tool_choice none are accepted no-ops", async () => {
    const res = await t.client.chat.completions.create({
      model: "fake-model", messages: [user("Hi")], max_tokens: 1, response_format: { type: "text" }, tool_choice: "none",
    });
    expect(res.choices).toHaveLength(1);
  });
});
