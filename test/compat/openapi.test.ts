/**
 * /openapi.json and /docs: the OpenAPI document Elysia generates from the request schemas is valid
 * (parsed and validated by @apidevtools/swagger-parser), names every POST route's body with its
 * fields, and is served without the API key (as /health is); /docs is a page that reads it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import type { TestServer } from "../server/testServer";
import { startTestServer } from "../server/testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ apiKey: "sk-test" });
});
afterAll(() => t.close());

type Json = Record<string, any>;
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${t.url}${path}`, { headers });

describe("/openapi.json", () => {
  test("a valid OpenAPI document, served without the API key", async () => {
    const res = await get("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Json;
    const validated = (await SwaggerParser.validate(structuredClone(doc) as never)) as Json;
    expect(validated.info.title).toBe("FastGen");
  });

  test("every POST route's body, with its fields and ranges", async () => {
    const doc = (await (await get("/openapi.json")).json()) as Json;
    const bodyOf = (path: string) => doc.paths[path].post.requestBody.content["application/json"].schema;
    for (const path of ["/v1/completions", "/v1/chat/completions", "/v1/responses", "/tokenize", "/detokenize"]) expect(bodyOf(path).type).toBe("object");
    expect(bodyOf("/v1/completions").required).toEqual(["prompt"]);
    expect(bodyOf("/v1/completions").properties.temperature).toMatchObject({ type: "number", minimum: 0, maximum: 2 });
    expect(bodyOf("/v1/chat/completions").properties.allowed_token_ids).toMatchObject({ type: "array", items: { type: "integer", minimum: 0 } });
    expect(bodyOf("/v1/chat/completions").properties.messages).toMatchObject({ type: "array", minItems: 1 });
    expect(bodyOf("/v1/responses").required).toEqual(["input"]);
    // structured outputs (both endpoints) and tools (chat)
    expect(Object.keys(bodyOf("/v1/completions").properties)).toEqual(expect.arrayContaining(["response_format", "structured_outputs", "guided_json", "guided_regex", "guided_choice", "guided_grammar"]));
    const chat = bodyOf("/v1/chat/completions").properties;
    expect(chat.response_format).toMatchObject({ type: "object", required: ["type"] });
    expect(chat.tools).toMatchObject({ type: "array", maxItems: 128, items: { type: "object", required: ["type"] } });
    expect(chat.tools.items.properties.function).toMatchObject({ type: "object", required: ["name"] });
    expect(chat.parallel_tool_calls).toMatchObject({ type: "boolean" });
    expect(Object.keys(chat.messages.items.properties)).toEqual(["role", "content", "name", "tool_calls", "tool_call_id"]);
  });

  test("/docs is an HTML page that loads /openapi.json; other routes still need the key", async () => {
    const res = await get("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain(`"url":"openapi.json"`); // relative to /docs
    expect((await get("/v1/models")).status).toBe(401);
  });
});

describe("schema failures are OpenAI's 400", () => {
  const auth = { authorization: "Bearer sk-test" };
  test.each([
    [{ prompt: "x", temperature: 3 }, "temperature", "'temperature' must be a number >= 0 and <= 2, got 3."],
    [{ prompt: "x", n: 1.5 }, "n", "'n' must be an integer >= 1 and <= 128, got 1.5."],
    [{ prompt: "x", echo: "yes" }, "echo", "'echo' must be a boolean, got \"yes\"."],
    [{ prompt: "x", logit_bias: { "5": 101 } }, "logit_bias.5", "'logit_bias.5' must be a number >= -100 and <= 100, got 101."],
    [{ prompt: [[1], ["a"]] }, "prompt[1][0]", "'prompt[1][0]' must be an integer >= 0, got \"a\"."],
    [{ prompt: {} }, "prompt", "'prompt' must be a string, a list of strings, a list of token ids, or a list of token-id lists (non-empty), got {}."],
    [{ max_tokens: 2 }, "prompt", "'prompt' is required."],
    [{ prompt: "x", response_format: { type: 5 } }, "response_format.type", "'response_format.type' must be a string, got 5."],
    [{ prompt: "x", structured_outputs: { regex: 5 } }, "structured_outputs.regex", "'structured_outputs.regex' must be a string or null, got 5."],
    [{ prompt: "x", guided_choice: "a" }, "guided_choice", "'guided_choice' must be a list (each string), got \"a\"."],
    [{ prompt: "x", guided_json: 5 }, "guided_json", "'guided_json' must be a JSON schema (an object or its JSON text), got 5."],
  ])("%j", async (body, param, message) => {
    const res = await t.post("/v1/completions", body, auth);
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).error).toEqual({ message, type: "invalid_request_error", param, code: null });
  });

  const user = { role: "user", content: "x" };
  const call = (fn: unknown) => ({ role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: fn }] });
  test.each([
    [{ tools: [{ type: "function", function: { name: 5 } }] }, "tools[0].function.name", "'tools[0].function.name' must be a string, got 5."],
    [{ tools: [{ type: "function", function: { name: "f", parameters: [] } }] }, "tools[0].function.parameters", "'tools[0].function.parameters' must be an object or null, got []."],
    [{ tool_choice: 5 }, "tool_choice", `'tool_choice' must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}, got 5.`],
    [{ parallel_tool_calls: "yes" }, "parallel_tool_calls", "'parallel_tool_calls' must be a boolean, got \"yes\"."],
    [{ messages: [user, call({ name: "f", arguments: {} })] }, "messages[1].tool_calls[0].function.arguments", "'messages[1].tool_calls[0].function.arguments' must be a string, got {}."],
    [{ messages: [user, { role: "tool", content: "1", tool_call_id: 7 }] }, "messages[1].tool_call_id", "'messages[1].tool_call_id' must be a string or null, got 7."],
  ])("chat %j", async (fields, param, message) => {
    const res = await t.post("/v1/chat/completions", { messages: [user], ...fields }, auth);
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).error).toEqual({ message, type: "invalid_request_error", param, code: null });
  });
});
