/**
 * /v1/responses refusals (fake engine): what needs stored state or built-in tools, and malformed
 * tools, formats and tool items, are a 400 naming the field, never ignored; a failure mid-stream is an `error` event.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { checkErrorBody } from "../reliability/helpers";
import type { TestServer } from "../server/testServer";
import { startTestServer } from "../server/testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

const ok = { input: "Hi", max_output_tokens: 4 };

describe("400 naming what is not supported", () => {
  test.each([
    [{ ...ok, store: true }, "store", "stores no responses"],
    [{ ...ok, previous_response_id: "resp_1" }, "previous_response_id", "stores no responses"],
    [{ ...ok, conversation: "conv_1" }, "conversation", "stores no conversations"],
    [{ ...ok, background: true }, "background", "stored"],
    [{ ...ok, text: { format: { type: "xml" } } }, "text.format.type", "json_schema"],
    [{ ...ok, text: { format: { type: "json_schema", name: "x", schema: "{not json" } } }, "text.format.schema", "JSON schema"],
    [{ ...ok, tools: [{ type: "web_search" }] }, "tools[0].type", "Only function tools"],
    [{ ...ok, tools: [{ type: "function", name: "a b" }] }, "tools[0].name", "letters, digits"],
    [{ ...ok, tool_choice: "required" }, "tool_choice", "needs 'tools'"],
    [{ ...ok, tools: [{ type: "function", name: "f" }], tool_choice: { type: "function", name: "g" } }, "tool_choice", "not in 'tools'"],
    [{ ...ok, tools: [{ type: "function", name: "f" }], tool_choice: "required", text: { format: { type: "json_object" } } }, "tool_choice", "cannot be combined"],
    [{ input: [{ type: "function_call", name: "f", arguments: "{}" }] }, "input[0].call_id", "required"],
    [{ input: [{ type: "function_call_output", call_id: "c" }] }, "input[0].output", "required"],
    [{ ...ok, reasoning: { effort: "high" } }, "reasoning", "reasoning"],
    [{ input: [{ type: "item_reference", id: "msg_1" }] }, "input[0].type", "stores no responses"],
    [{ input: [{ type: "reasoning", summary: [] }] }, "input[0].type", "reasoning"],
    [{ input: [{ role: "user", content: [{ type: "input_image", image_url: "x" }] }] }, "input[0].content[0].type", "text parts"],
    [{ input: [{ role: "tool", content: "x" }] }, "input[0].role", "must be one of"],
    [{ input: [] }, "input", "non-empty"],
    [{ max_output_tokens: 3 }, "input", "required"],
  ])("%j", async (body, param, words) => {
    const res = await t.post("/v1/responses", body);
    expect(res.status).toBe(400);
    const err = checkErrorBody(await res.json(), "responses");
    expect((err as unknown as { param: string }).param).toBe(param);
    expect(err.message).toContain(words);
  });

  test("through the openai client: BadRequestError", async () => {
    const err = await t.client.responses.create({ model: "fake-model", input: "Hi", store: true }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.param).toBe("store");
  });
});

describe("accepted", () => {
  test("store false, text.format text, tools [], tool_choice auto, an unknown field, include of items never produced", async () => {
    const res = await t.post("/v1/responses", {
      ...ok, store: false, text: { format: { type: "text" }, verbosity: "low" }, tools: [], tool_choice: "auto", parallel_tool_calls: false,
      include: ["reasoning.encrypted_content"], metadata: { k: "v" }, user: "u", some_future_field: 1,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ object: "response", status: "incomplete", metadata: { k: "v" }, user: "u", parallel_tool_calls: false, max_output_tokens: 4 });
  });

  test("a message list with assistant output_text turns and a developer message", async () => {
    const res = await t.post("/v1/responses", {
      input: [
        { role: "developer", content: "Be brief." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Hi" }] },
        { type: "message", role: "assistant", id: "msg_x", status: "completed", content: [{ type: "output_text", text: "Hello", annotations: [] }] },
        { role: "user", content: "Again" },
      ],
      max_output_tokens: 2,
    });
    expect(res.status).toBe(200);
  });
});

describe("a failure mid-stream", () => {
  test("is an error event (no [DONE]) after the response's first events", async () => {
    t.engine.crashAfter = 2;
    try {
      const res = await t.post("/v1/responses", { input: "Hi", max_output_tokens: 20, stream: true });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain("[DONE]");
      const events = text.trim().split("\n\n").map((e) => {
        const [name, data] = e.split("\n");
        return { name: name!.slice("event: ".length), data: JSON.parse(data!.slice("data: ".length)) };
      });
      expect(events[0]!.name).toBe("response.created");
      const last = events.at(-1)!;
      expect(last.name).toBe("error");
      expect(last.data).toMatchObject({ type: "error", message: expect.any(String), sequence_number: events.length - 1 });
      expect(events.every((e) => e.name === e.data.type)).toBe(true);
    } finally {
      t.engine.crashAfter = null;
    }
  });
});
