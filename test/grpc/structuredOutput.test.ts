/**
 * Output constraints over gRPC on the REAL engine (fastgen-demo-tiny, CPU): a front end's
 * constraint reaches its replica (RemoteEngine, and HTTP served over it: response_format and a
 * named tool_choice), and the Generate API takes structured_output and tools / tool_choice
 * itself, with INVALID_ARGUMENT naming the field for a bad one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import type { SamplingOptions } from "../../src/engine/samplingOptions";
import type { FastGenGrpcServer } from "../../src/grpc/grpcServer";
import { createGrpcServer } from "../../src/grpc/grpcServer";
import { RemoteEngine } from "../../src/grpc/remoteEngine";
import { PERSON_SCHEMA, schemaErrors } from "../grammar/helpers";
import { startDemoEngine } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";
import { serveEngine } from "../server/testServer";
import type { ProtoClient } from "./protoClient";
import { protoClient, readStream } from "./protoClient";

let engine: AsyncEngine;
let grpc: FastGenGrpcServer;
let remote: RemoteEngine;
let front: TestServer<RemoteEngine>;
let client: ProtoClient;
beforeAll(async () => {
  engine = await startDemoEngine();
  grpc = createGrpcServer({ engine });
  const { address } = await grpc.listen("127.0.0.1", 0);
  remote = new RemoteEngine(address, engine.tokenizer);
  await remote.probe(5000);
  front = await serveEngine(remote);
  client = protoClient(address);
});
afterAll(async () => {
  client?.close();
  await front?.close();
  await remote?.shutdown();
  await grpc?.stop();
  await engine?.shutdown();
});

const WEATHER_PARAMS = {
  type: "object",
  properties: { city: { type: "string", maxLength: 10 }, days: { type: "integer", minimum: 1, maximum: 7 } },
  required: ["city", "days"],
  additionalProperties: false,
};

async function text(e: Pick<AsyncEngine, "generate">, id: string, sampling: Omit<SamplingOptions, "maxTokens">): Promise<string[]> {
  const promptIds = engine.tokenizer.encode("A person:", { addSpecialTokens: true });
  const out: string[] = [];
  for await (const d of e.generate({ requestId: id, promptIds, sampling: { maxTokens: 300, ...sampling } })) out[d.index] = (out[d.index] ?? "") + d.text;
  return out;
}

describe("a front end's constraint reaches its replica", () => {
  test("RemoteEngine: the same constrained samples as in-process (json schema, regex, choice)", async () => {
    const constraints = [
      { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) },
      { type: "regex" as const, pattern: "[A-Z]{2}-[0-9]{3}" },
      { type: "choice" as const, choices: ["red", "green"] },
    ];
    for (const structured of constraints) {
      const sampling = { structured, temperature: 1, seed: 4, n: 2 };
      const local = await text(engine, "local", sampling);
      const viaGrpc = await text(remote, "remote", sampling);
      expect(viaGrpc).toEqual(local);
    }
    const [person] = await text(remote, "person", { structured: constraints[0], seed: 5 });
    expect(schemaErrors(JSON.parse(person!), PERSON_SCHEMA)).toEqual([]);
  });

  test("HTTP over a replica: response_format, and a named tool_choice on /v1/responses", async () => {
    const chat = await front.client.chat.completions.create({
      model: "fastgen-demo-tiny", messages: [{ role: "user", content: "A person?" }], max_tokens: 300, seed: 3,
      response_format: { type: "json_schema", json_schema: { name: "p", schema: PERSON_SCHEMA, strict: true } },
    });
    expect(schemaErrors(JSON.parse(chat.choices[0]!.message.content!), PERSON_SCHEMA)).toEqual([]);
    const r = await front.client.responses.create({
      // @ts-expect-error seed: a vLLM extension the SDK's type lacks (the server reads it)
      model: "fastgen-demo-tiny", input: "Weather?", max_output_tokens: 100, seed: 2,
      tools: [{ type: "function", name: "get_weather", parameters: WEATHER_PARAMS, strict: true }], tool_choice: { type: "function", name: "get_weather" },
    });
    const call = r.output[0]!;
    expect(call.type).toBe("function_call");
    if (call.type === "function_call") expect(schemaErrors(JSON.parse(call.arguments), WEATHER_PARAMS)).toEqual([]);
  });
});

describe("the Generate API", () => {
  const prompts = [{ text: "Pick:" }];

  test("structured_output: regex, choice, a JSON schema", async () => {
    const regex = await client.Generate({ prompts, params: { max_new_tokens: 20, structured_output: { regex: "[a-z]{3}[0-9]" } } });
    expect(regex.responses[0].generated_text).toMatch(/^[a-z]{3}[0-9]$/);
    const choice = await client.Generate({ prompts, params: { max_new_tokens: 10, structured_output: { choice: { choices: ["yes", "no"] } } } });
    expect(["yes", "no"]).toContain(choice.responses[0].generated_text);
    const json = await client.Generate({ prompts, params: { max_new_tokens: 300, seed: 3, temperature: 1, structured_output: { json_schema: JSON.stringify(PERSON_SCHEMA) } } });
    expect(schemaErrors(JSON.parse(json.responses[0].generated_text), PERSON_SCHEMA)).toEqual([]);
  });

  test("tools with a named and a required tool_choice (streamed)", async () => {
    const tools = [{ name: "get_weather", parameters: JSON.stringify(WEATHER_PARAMS) }, { name: "noop", description: "does nothing" }];
    const named = await client.Generate({ prompts, params: { max_new_tokens: 100, seed: 1, tools, tool_choice: "get_weather" } });
    expect(schemaErrors(JSON.parse(named.responses[0].generated_text), WEATHER_PARAMS)).toEqual([]);
    const { messages, error } = await readStream(
      client.GenerateStream({ prompt: prompts[0], params: { max_new_tokens: 150, seed: 2, tools, tool_choice: "required", parallel_tool_calls: false } }),
    );
    expect(error).toBeUndefined();
    const list = JSON.parse(messages.map((m) => m.text).join("")) as { name: string; arguments: unknown }[];
    expect(list).toHaveLength(1);
    if (list[0]!.name === "get_weather") expect(schemaErrors(list[0]!.arguments, WEATHER_PARAMS)).toEqual([]);
    else expect(list[0]!.name).toBe("noop");
  });

  test.each([
    [{ structured_output: {} }, "params.structured_output"],
    [{ structured_output: { json_object: false } }, "params.structured_output"],
    [{ structured_output: { json_schema: "{nope" } }, "params.structured_output.json_schema"],
    [{ structured_output: { choice: { choices: [] } } }, "params.structured_output.choice"],
    [{ structured_output: { regex: "(unclosed" } }, "regex"],
    [{ tools: [{ name: "a b" }], tool_choice: "required" }, "params.tools[0].name"],
    [{ tools: [{ name: "f", parameters: "[1]" }] }, "params.tools[0].parameters"],
    [{ tool_choice: "required" }, "params.tool_choice"],
    [{ tools: [{ name: "f" }], tool_choice: "g" }, "params.tool_choice"],
    [{ tools: [{ name: "f" }], tool_choice: "f", structured_output: { regex: "a" } }, "params.tool_choice"],
  ])("%j is INVALID_ARGUMENT naming %s", async (params, field) => {
    const err = await client.Generate({ prompts, params: { max_new_tokens: 5, ...params } }).catch((e) => e);
    expect(err.code).toBe(3);
    expect(err.details).toContain(field);
  });
});
