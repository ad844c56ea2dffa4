/**
 * /v1/responses over the REAL engine (fastgen-demo-tiny, CPU) through the official clients: the
 * openai SDK (responses.create, responses.stream), the Vercel AI SDK's default provider
 * `openai(model)` (generateText, streamText) and LangChain's ChatOpenAI with useResponsesApi.
 */
import { describe, expect, test } from "bun:test";
import { createOpenAI } from "@ai-sdk/openai";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, streamText } from "ai";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { expectKvDrained, useDemoServer } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";

const MODEL = "fastgen-demo-tiny";
const QUESTION = "What does os.path.join do?";
let engine: AsyncEngine;
let t: TestServer<AsyncEngine>;
useDemoServer((e, server) => ((engine = e), (t = server)));

/** The greedy answer to QUESTION through chat completions: every client must produce the same text. */
async function chatAnswer(maxTokens: number): Promise<{ text: string; promptTokens: number; completionTokens: number; finish: string }> {
  const r = await t.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: QUESTION }], max_tokens: maxTokens, temperature: 0 });
  return { text: r.choices[0]!.message.content!, promptTokens: r.usage!.prompt_tokens, completionTokens: r.usage!.completion_tokens, finish: r.choices[0]!.finish_reason };
}

describe("openai SDK", () => {
  test("responses.create: the chat answer, usage, status", async () => {
    const want = await chatAnswer(64);
    expect(want.finish).toBe("stop");
    const r = await t.client.responses.create({ model: MODEL, input: QUESTION, max_output_tokens: 64, temperature: 0 });
    expect(r.object).toBe("response");
    expect(r.id).toMatch(/^resp_/);
    expect(r.status).toBe("completed");
    expect(r.output_text).toBe(want.text);
    expect(r.output[0]).toMatchObject({ type: "message", role: "assistant", status: "completed" });
    expect(r.usage).toMatchObject({ input_tokens: want.promptTokens, output_tokens: want.completionTokens, total_tokens: want.promptTokens + want.completionTokens });
    expect((r as unknown as { store: unknown }).store).toBe(false); // in the wire JSON, not in the SDK's type
  });

  test("instructions become a system message; max_output_tokens makes it incomplete", async () => {
    const r = await t.client.responses.create({ model: MODEL, instructions: "Be brief.", input: QUESTION, max_output_tokens: 3, temperature: 0 });
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.usage!.output_tokens).toBe(3);
    expect(r.instructions).toBe("Be brief.");
    const tokens = await (await t.post("/tokenize", { messages: [{ role: "system", content: "Be brief." }, { role: "user", content: QUESTION }] })).json();
    expect(r.usage!.input_tokens).toBe((tokens as { count: number }).count);
  });

  test("responses.stream: events in OpenAI's order, the same text as the whole answer", async () => {
    const whole = await t.client.responses.create({ model: MODEL, input: [{ role: "user", content: QUESTION }], max_output_tokens: 64, temperature: 0 });
    const stream = t.client.responses.stream({ model: MODEL, input: [{ role: "user", content: [{ type: "input_text", text: QUESTION }] }], max_output_tokens: 64, temperature: 0 });
    const types: string[] = [];
    const seqs: number[] = [];
    let deltas = "";
    for await (const event of stream) {
      types.push(event.type);
      seqs.push(event.sequence_number);
      if (event.type === "response.output_text.delta") deltas += event.delta;
    }
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(whole.output_text);
    expect(deltas).toBe(whole.output_text);
    expect(final.usage).toEqual(whole.usage);
    const distinct = types.filter((x, i) => x !== types[i - 1]);
    expect(distinct).toEqual([
      "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added", "response.output_text.delta",
      "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
    ]);
    expect(seqs).toEqual(seqs.map((_, i) => i));
    await expectKvDrained(engine);
  });

  test("logprobs through include", async () => {
    const r = await t.client.responses.create({
      model: MODEL, input: QUESTION, max_output_tokens: 4, temperature: 0, include: ["message.output_text.logprobs"], top_logprobs: 2,
    });
    const part = r.output[0]!.type === "message" ? r.output[0]!.content[0]! : null;
    expect(part?.type).toBe("output_text");
    const lps = (part as { logprobs: { token: string; logprob: number; top_logprobs: unknown[] }[] }).logprobs;
    expect(lps).toHaveLength(4);
    expect(lps.every((l) => l.logprob <= 0 && l.top_logprobs.length === 2)).toBe(true);
  });
});

describe("Vercel AI SDK, default provider openai(model) (the Responses API)", () => {
  const provider = () => createOpenAI({ baseURL: `${t.url}/v1`, apiKey: "unused" });

  test("generateText", async () => {
    const want = await chatAnswer(64);
    const r = await generateText({ model: provider()(MODEL), prompt: QUESTION, maxOutputTokens: 64, temperature: 0, maxRetries: 0 });
    expect(r.text).toBe(want.text);
    expect(r.finishReason).toBe("stop");
    expect(r.usage.inputTokens).toBe(want.promptTokens);
    expect(r.usage.outputTokens).toBe(want.completionTokens);
  });

  test("streamText, with a system message and a conversation", async () => {
    const messages = [{ role: "user" as const, content: QUESTION }];
    const whole = await generateText({ model: provider()(MODEL), system: "Be brief.", messages, maxOutputTokens: 32, temperature: 0, maxRetries: 0 });
    const r = streamText({ model: provider()(MODEL), system: "Be brief.", messages, maxOutputTokens: 32, temperature: 0, maxRetries: 0 });
    let text = "";
    for await (const piece of r.textStream) text += piece;
    expect(text).toBe(whole.text);
    expect(await r.finishReason).toBe(whole.finishReason);
    expect((await r.usage).outputTokens).toBe(whole.usage.outputTokens);
  });
});

describe("LangChain ChatOpenAI with useResponsesApi", () => {
  const model = (streaming = false) =>
    new ChatOpenAI({ model: MODEL, useResponsesApi: true, temperature: 0, maxTokens: 64, maxRetries: 0, streaming, apiKey: "unused", configuration: { baseURL: `${t.url}/v1` } });

  test("invoke and stream", async () => {
    const want = await chatAnswer(64);
    const msg = await model().invoke([{ role: "user", content: QUESTION }]);
    expect(msg.text).toBe(want.text);
    expect(msg.usage_metadata).toMatchObject({ input_tokens: want.promptTokens, output_tokens: want.completionTokens });
    let streamed = "";
    for await (const chunk of await model(true).stream([{ role: "user", content: QUESTION }])) streamed += chunk.text;
    expect(streamed).toBe(want.text);
  });
});
