/**
 * Structured outputs and tool calls over HTTP on the REAL engine (fastgen-demo-tiny, CPU) through
 * the official clients: openai (chat.completions.parse, tools), the Vercel AI SDK
 * (@ai-sdk/openai-compatible generateObject) and LangChain (withStructuredOutput, bindTools).
 * The model is random-ish: only the grammar makes these outputs valid.
 */
import { describe, expect, test } from "bun:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { generateObject } from "ai";
import { zodResponseFormat } from "openai/helpers/zod";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { expectKvDrained, useDemoServer } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";
import { Person, PERSON_SCHEMA, schemaErrors } from "./helpers";

const MODEL = "fastgen-demo-tiny";
let engine: AsyncEngine;
let t: TestServer<AsyncEngine>;
useDemoServer((e, server) => ((engine = e), (t = server)));

const WEATHER = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather of a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 10 }, unit: { type: "string", enum: ["c", "f"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
      required: ["city", "unit", "days"],
      additionalProperties: false,
    },
  },
};
const TIME = { type: "function" as const, function: { name: "get_time", parameters: { type: "object", properties: { tz: { type: "string", enum: ["utc", "cet"] } }, required: ["tz"] } } };

describe("structured outputs", () => {
  test("openai chat.completions.parse with a nested zod schema, n = 3", async () => {
    const r = await t.client.chat.completions.parse({
      model: MODEL, messages: [{ role: "user", content: "A person?" }], response_format: zodResponseFormat(Person, "person"), max_tokens: 300, n: 3, seed: 5,
    });
    expect(r.choices.length).toBe(3);
    for (const c of r.choices) {
      expect(c.finish_reason).toBe("stop");
      expect(Person.safeParse(c.message.parsed).success).toBe(true);
    }
  });

  test("json_object, vLLM structured_outputs and guided_* on completions and chat", async () => {
    const obj = await t.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], response_format: { type: "json_object" }, max_tokens: 200, seed: 1 });
    expect(typeof JSON.parse(obj.choices[0]!.message.content!)).toBe("object");
    const choice = await t.post("/v1/completions", { prompt: "Pick:", structured_outputs: { choice: ["red", "green"] }, max_tokens: 5 });
    expect(["red", "green"]).toContain(((await choice.json()) as any).choices[0].text);
    const regex = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "id" }], guided_regex: "[A-Z]{2}-[0-9]{3}", max_tokens: 20 });
    expect(((await regex.json()) as any).choices[0].message.content).toMatch(/^[A-Z]{2}-[0-9]{3}$/);
    const json = await t.post("/v1/completions", { prompt: "P:", guided_json: PERSON_SCHEMA, max_tokens: 300, seed: 3 });
    expect(schemaErrors(JSON.parse(((await json.json()) as any).choices[0].text), PERSON_SCHEMA)).toEqual([]);
    const grammar = await t.post("/v1/completions", { prompt: "G:", structured_outputs: { grammar: 'root ::= "a" [0-9] "b"' }, max_tokens: 5 });
    expect(((await grammar.json()) as any).choices[0].text).toMatch(/^a[0-9]b$/);
  });

  test("a streamed json_schema answer reassembles into a valid object", async () => {
    const stream = await t.client.chat.completions.create({
      model: MODEL, messages: [{ role: "user", content: "p" }], stream: true, max_tokens: 300, seed: 9,
      response_format: { type: "json_schema", json_schema: { name: "p", schema: PERSON_SCHEMA, strict: true } },
    });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    expect(schemaErrors(JSON.parse(text), PERSON_SCHEMA)).toEqual([]);
  });

  test("bad constraints are 400s", async () => {
    const twice = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "x" }], guided_regex: "a", response_format: { type: "json_object" } });
    expect(twice.status).toBe(400);
    const bad = await t.post("/v1/completions", { prompt: "x", guided_regex: "(unclosed", max_tokens: 3 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.message).toContain("regex");
  });

  test("AI SDK generateObject (@ai-sdk/openai-compatible, structured outputs on)", async () => {
    const provider = createOpenAICompatible({ name: "fastgen", baseURL: `${t.url}/v1`, supportsStructuredOutputs: true });
    const { object } = await generateObject({ model: provider(MODEL), schema: Person, prompt: "A person", maxOutputTokens: 300, seed: 4 });
    expect(Person.safeParse(object).success).toBe(true);
  });

  test("LangChain withStructuredOutput (json_schema)", async () => {
    const llm = new ChatOpenAI({ model: MODEL, apiKey: "unused", configuration: { baseURL: `${t.url}/v1` }, maxTokens: 300, maxRetries: 0 });
    const out = await llm.withStructuredOutput(Person, { method: "jsonSchema" }).invoke("A person");
    expect(Person.safeParse(out).success).toBe(true);
  });
});

describe("tool calling", () => {
  test("named tool_choice: valid arguments for the schema", async () => {
    const r = await t.client.chat.completions.create({
      model: MODEL, messages: [{ role: "user", content: "Weather in Paris?" }], tools: [WEATHER, TIME], max_tokens: 100, seed: 2,
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    const call = r.choices[0]!.message.tool_calls![0]!;
    expect(r.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call.type).toBe("function");
    if (call.type !== "function") return;
    expect(call.function.name).toBe("get_weather");
    expect(schemaErrors(JSON.parse(call.function.arguments), WEATHER.function.parameters)).toEqual([]);
  });

  test("required tool_choice, parallel calls off and on", async () => {
    for (const parallel of [false, true]) {
      const r = await t.client.chat.completions.create({
        model: MODEL, messages: [{ role: "user", content: "Weather and time?" }], tools: [WEATHER, TIME], tool_choice: "required",
        parallel_tool_calls: parallel, max_tokens: 580, seed: 8,
      });
      const calls = r.choices[0]!.message.tool_calls!;
      expect(r.choices[0]!.finish_reason).toBe("tool_calls");
      expect(calls.length).toBeGreaterThan(0);
      if (!parallel) expect(calls.length).toBe(1);
      for (const c of calls) {
        if (c.type !== "function") throw new Error("not a function call");
        const tool = [WEATHER, TIME].find((x) => x.function.name === c.function.name)!;
        expect(schemaErrors(JSON.parse(c.function.arguments), tool.function.parameters)).toEqual([]);
      }
    }
  });

  test("streamed tool-call deltas reassemble (named and required)", async () => {
    for (const tool_choice of [{ type: "function" as const, function: { name: "get_weather" } }, "required" as const]) {
      const stream = await t.client.chat.completions.create({
        model: MODEL, messages: [{ role: "user", content: "Weather?" }], tools: [WEATHER], tool_choice, parallel_tool_calls: false, max_tokens: 150, stream: true, seed: 6,
      });
      const calls: { id?: string; name: string; args: string }[] = [];
      let finish: string | null = null;
      for await (const chunk of stream) {
        for (const d of chunk.choices[0]?.delta.tool_calls ?? []) {
          calls[d.index] ??= { name: "", args: "" };
          if (d.id) calls[d.index]!.id = d.id;
          calls[d.index]!.name += d.function?.name ?? "";
          calls[d.index]!.args += d.function?.arguments ?? "";
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(finish).toBe("tool_calls");
      expect(calls[0]!.id).toMatch(/^call_/);
      expect(calls[0]!.name).toBe("get_weather");
      expect(schemaErrors(JSON.parse(calls[0]!.args), WEATHER.function.parameters)).toEqual([]);
    }
  });

  test("a conversation with tool calls and tool results renders, then a named call", async () => {
    const r = await t.client.chat.completions.create({
      model: MODEL, tools: [WEATHER], tool_choice: { type: "function", function: { name: "get_weather" } }, max_tokens: 100,
      messages: [
        { role: "user", content: "Weather in Oslo?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo","unit":"c","days":1}' } }] },
        { role: "tool", tool_call_id: "call_1", content: "-3 C" },
        { role: "user", content: "And Rome?" },
      ],
    });
    expect(r.choices[0]!.message.tool_calls!.length).toBe(1);
  });

  test("LangChain bindTools with tool_choice any", async () => {
    const llm = new ChatOpenAI({ model: MODEL, apiKey: "unused", configuration: { baseURL: `${t.url}/v1` }, maxTokens: 150, maxRetries: 0 });
    const msg = await llm.bindTools([WEATHER], { tool_choice: "get_weather" }).invoke("Weather in Lima?");
    expect(msg.tool_calls?.[0]?.name).toBe("get_weather");
    expect(schemaErrors(msg.tool_calls![0]!.args, WEATHER.function.parameters)).toEqual([]);
  });

  test("the KV cache drains", async () => {
    await expectKvDrained(engine);
  });
});
