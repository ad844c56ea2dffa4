/**
 * /v1/responses with structured output (text.format) and function tools, on the REAL engine
 * (fastgen-demo-tiny, CPU), through the openai SDK (responses.create / stream / parse with zod)
 * and the Vercel AI SDK's default provider `openai(model)` (generateObject, generateText with
 * tools). The model is random-ish: only the grammar makes these outputs valid.
 */
import { describe, expect, test } from "bun:test";
import { createOpenAI } from "@ai-sdk/openai";
import { generateObject, generateText, stepCountIs, tool } from "ai";
import { zodResponsesFunction, zodTextFormat } from "openai/helpers/zod";
import { z } from "zod";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { expectKvDrained, useDemoServer } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";
import { Person, PERSON_SCHEMA, schemaErrors } from "./helpers";

const MODEL = "fastgen-demo-tiny";
let engine: AsyncEngine;
let t: TestServer<AsyncEngine>;
useDemoServer((e, server) => ((engine = e), (t = server)));

const WEATHER_PARAMS = {
  type: "object",
  properties: { city: { type: "string", maxLength: 10 }, unit: { type: "string", enum: ["c", "f"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
  required: ["city", "unit", "days"],
  additionalProperties: false,
};
const TIME_PARAMS = { type: "object", properties: { tz: { type: "string", enum: ["utc", "cet"] } }, required: ["tz"], additionalProperties: false };
const WEATHER = { type: "function" as const, name: "get_weather", description: "Weather of a city", parameters: WEATHER_PARAMS, strict: true };
const TIME = { type: "function" as const, name: "get_time", description: null, parameters: TIME_PARAMS, strict: true };
const paramsOf = (name: string) => (name === "get_weather" ? WEATHER_PARAMS : TIME_PARAMS);

type Item = { type: string; [k: string]: any };
const calls = (output: Item[]) => output.filter((o) => o.type === "function_call");

describe("text.format", () => {
  test("responses.parse with a nested zod schema (zodTextFormat)", async () => {
    const r = await t.client.responses.parse({ model: MODEL, input: "A person?", text: { format: zodTextFormat(Person, "person") }, max_output_tokens: 300, temperature: 1, seed: 5 } as any);
    expect(r.status).toBe("completed");
    expect(Person.safeParse(r.output_parsed).success).toBe(true);
    expect(r.text?.format).toMatchObject({ type: "json_schema", name: "person", strict: true });
  });

  test("json_object, and a streamed json_schema that reassembles into a valid object", async () => {
    // Any object: the random model's strings are unbounded and run to max_output_tokens, so only its start is checked.
    const obj = await t.client.responses.create({ model: MODEL, input: "JSON please", text: { format: { type: "json_object" } }, max_output_tokens: 20, seed: 1 } as any);
    expect(obj.output_text).toMatch(/^\{"/);
    const stream = t.client.responses.stream({
      model: MODEL, input: "p", max_output_tokens: 300, seed: 9, text: { format: { type: "json_schema", name: "p", schema: PERSON_SCHEMA, strict: true } },
    } as any);
    let text = "";
    for await (const e of stream) if (e.type === "response.output_text.delta") text += e.delta;
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(text);
    expect(schemaErrors(JSON.parse(text), PERSON_SCHEMA)).toEqual([]);
  });

  test("AI SDK generateObject through openai(model) (the Responses API)", async () => {
    const provider = createOpenAI({ baseURL: `${t.url}/v1`, apiKey: "unused" });
    const { object } = await generateObject({ model: provider(MODEL), schema: Person, prompt: "A person", maxOutputTokens: 300, seed: 4, maxRetries: 0 });
    expect(Person.safeParse(object).success).toBe(true);
  });
});

describe("function tools", () => {
  test("named tool_choice: one function_call item, valid arguments, no message", async () => {
    const r = await t.client.responses.create({
      model: MODEL, input: "Weather in Paris?", tools: [WEATHER, TIME], tool_choice: { type: "function", name: "get_weather" }, max_output_tokens: 100, seed: 2,
    } as any);
    expect(r.status).toBe("completed");
    expect(r.output).toHaveLength(1);
    const call = r.output[0] as Item;
    expect(call).toMatchObject({ type: "function_call", status: "completed", name: "get_weather" });
    expect(call.id).toMatch(/^fc_/);
    expect(call.call_id).toMatch(/^call_/);
    expect(schemaErrors(JSON.parse(call.arguments), WEATHER_PARAMS)).toEqual([]);
    expect(r.tool_choice).toEqual({ type: "function", name: "get_weather" });
    expect((r.tools as Item[]).map((x) => x.name)).toEqual(["get_weather", "get_time"]);
  });

  test("required, parallel calls off and on", async () => {
    for (const parallel of [false, true]) {
      const r = await t.client.responses.create({
        model: MODEL, input: "Weather and time?", tools: [WEATHER, TIME], tool_choice: "required", parallel_tool_calls: parallel, max_output_tokens: 580, seed: 8,
      } as any);
      const made = calls(r.output as Item[]);
      expect(made.length).toBeGreaterThan(0);
      if (!parallel) expect(made.length).toBe(1);
      for (const c of made) expect(schemaErrors(JSON.parse(c.arguments), paramsOf(c.name))).toEqual([]);
    }
  });

  test("responses.parse parses a strict zod function's arguments (zodResponsesFunction)", async () => {
    const Weather = z.object({ city: z.string().max(10), unit: z.enum(["c", "f"]), days: z.number().int().min(1).max(7) });
    const r = await t.client.responses.parse({
      model: MODEL, input: "Weather?", tools: [zodResponsesFunction({ name: "get_weather", parameters: Weather })], tool_choice: "required", parallel_tool_calls: false, max_output_tokens: 150, seed: 3,
    } as any);
    const call = calls(r.output as Item[])[0]!;
    expect(Weather.safeParse(call.parsed_arguments).success).toBe(true);
  });

  test("streamed: function_call items and argument deltas in OpenAI's order (named and required)", async () => {
    for (const tool_choice of [{ type: "function", name: "get_weather" }, "required"]) {
      const stream = t.client.responses.stream({ model: MODEL, input: "Weather?", tools: [WEATHER], tool_choice, parallel_tool_calls: false, max_output_tokens: 150, seed: 6 } as any);
      const types: string[] = [];
      const seqs: number[] = [];
      let args = "";
      let added: Item | undefined;
      let done: Item | undefined;
      for await (const e of stream as AsyncIterable<Item>) {
        types.push(e.type);
        seqs.push(e.sequence_number);
        if (e.type === "response.output_item.added") added = e.item;
        if (e.type === "response.function_call_arguments.delta") args += e.delta;
        if (e.type === "response.function_call_arguments.done") done = e;
      }
      const final = await stream.finalResponse();
      const distinct = types.filter((x, i) => x !== types[i - 1]);
      expect(distinct).toEqual([
        "response.created", "response.in_progress", "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed",
      ]);
      expect(seqs).toEqual(seqs.map((_, i) => i));
      expect(added).toMatchObject({ type: "function_call", name: "get_weather", status: "in_progress", arguments: "" });
      expect(done).toMatchObject({ name: "get_weather", arguments: args, item_id: added!.id });
      const call = calls(final.output as Item[])[0]!;
      expect(call).toMatchObject({ id: added!.id, call_id: added!.call_id, arguments: args, status: "completed" });
      expect(schemaErrors(JSON.parse(args), WEATHER_PARAMS)).toEqual([]);
    }
  });

  test("function_call and function_call_output items render as chat's tool turns", async () => {
    const args = '{"city":"Oslo","unit":"c","days":1}';
    const chat = await t.client.chat.completions.create({
      model: MODEL, tools: [{ type: "function", function: { name: "get_weather", description: "Weather of a city", parameters: WEATHER_PARAMS } }], max_tokens: 1,
      messages: [
        { role: "user", content: "Weather in Oslo?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: args } }] },
        { role: "tool", tool_call_id: "call_1", content: "-3 C" },
        { role: "user", content: "And Rome?" },
      ],
    });
    const r = await t.client.responses.create({
      model: MODEL, tools: [{ ...WEATHER, strict: false }], max_output_tokens: 1,
      input: [
        { role: "user", content: "Weather in Oslo?" },
        { type: "function_call", call_id: "call_1", name: "get_weather", arguments: args },
        { type: "function_call_output", call_id: "call_1", output: "-3 C" },
        { role: "user", content: "And Rome?" },
      ],
    } as any);
    expect(r.usage!.input_tokens).toBe(chat.usage!.prompt_tokens);
  });

  test("AI SDK generateText with tools: required and named choices, then a second step with the tool's result", async () => {
    const provider = createOpenAI({ baseURL: `${t.url}/v1`, apiKey: "unused" });
    const schemas = {
      get_weather: z.object({ city: z.string().max(10), unit: z.enum(["c", "f"]), days: z.number().int().min(1).max(7) }),
      get_time: z.object({ tz: z.enum(["utc", "cet"]) }),
    };
    const tools = {
      get_weather: tool({
        description: "Weather of a city",
        inputSchema: schemas.get_weather,
        execute: async ({ city }) => `sunny in ${city}`,
      }),
      get_time: tool({ inputSchema: schemas.get_time }),
    };
    for (const toolChoice of ["required", { type: "tool", toolName: "get_time" }] as const) {
      const r = await generateText({
        model: provider(MODEL), tools, toolChoice, prompt: "Weather?", maxOutputTokens: 150, seed: 11, maxRetries: 0, providerOptions: { openai: { parallelToolCalls: false } },
      });
      expect(r.toolCalls.length).toBeGreaterThan(0);
      if (typeof toolChoice === "object") expect(r.toolCalls[0]!.toolName).toBe("get_time");
      for (const c of r.toolCalls) expect(schemas[c.toolName as keyof typeof schemas].safeParse(c.input).success).toBe(true);
    }
    // Step 2 sends the call and its result back as function_call / function_call_output items
    // (store: false, or the AI SDK refers to stored items by id).
    const loop = await generateText({
      model: provider(MODEL), tools: { get_weather: tools.get_weather }, toolChoice: { type: "tool", toolName: "get_weather" }, prompt: "Weather?",
      maxOutputTokens: 100, seed: 12, maxRetries: 0, stopWhen: stepCountIs(2), providerOptions: { openai: { store: false } },
    });
    expect(loop.steps).toHaveLength(2);
    expect(loop.steps[0]!.toolResults[0]!.output).toMatch(/^sunny in /);
  });

  test("the KV cache drains", async () => {
    await expectKvDrained(engine);
  });
});
