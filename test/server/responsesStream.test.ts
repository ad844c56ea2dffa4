/**
 * The Responses event stream of tool_choice "auto" from canned model output (no model): text
 * before a Hermes call streams as a message, the calls come whole as function_call items at the
 * end, and output indexes and sequence numbers count up.
 */
import { describe, expect, test } from "bun:test";
import type { FinishReason } from "../../src/engine/types";
import type { GenerationRun } from "../../src/server/generationRun";
import type { ResponseState } from "../../src/server/responses/responseObject";
import type { ResponsesPlan } from "../../src/server/responses/responsesRequest";
import { responseEvents } from "../../src/server/responses/responsesStream";
import type { ToolPlan } from "../../src/server/tools/toolRequest";
import { ToolStream } from "../../src/server/tools/toolResponse";

const TOOLS: ToolPlan = { tools: [{ name: "get_weather" }, { name: "get_time" }], choice: "auto", parallel: true };

function plan(tools: ToolPlan | null): ResponsesPlan {
  return {
    model: "m", messages: [], instructions: null, sampling: {}, maxTokensCap: Infinity, stream: true, tools,
    echo: { format: { type: "text" }, metadata: {}, user: null, parallelToolCalls: true, maxOutputTokens: null },
  };
}

function cannedRun(pieces: string[], finish: FinishReason = "stop"): GenerationRun {
  async function* deltas() {
    for (const [i, text] of pieces.entries())
      yield { choice: 0, delta: { index: 0, tokenIds: [i], text, ...(i === pieces.length - 1 ? { finishReason: finish } : {}) } };
  }
  return { deltas: deltas(), abort() {}, stop() {} };
}

async function events(pieces: string[], tools: ToolPlan | null) {
  const state: ResponseState = {
    id: "resp_1", messageId: "msg_1", createdAt: 0, text: "", logprobs: [], inputTokens: 3, cachedTokens: 0, outputTokens: 0, finishReason: null, calls: [],
  };
  const out: Record<string, any>[] = [];
  const stream = tools ? new ToolStream(tools, "hermes") : null;
  for await (const e of responseEvents(plan(tools), state, cannedRun(pieces), { next: 0 }, () => [], stream)) out.push(e);
  return out;
}

describe("tool_choice auto (hermes)", () => {
  test("text, then two calls: a message item, then function_call items", async () => {
    const out = await events(
      ["Let me ", "check.\n<tool", '_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', '\n<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'],
      TOOLS,
    );
    expect(out.map((e) => e.sequence_number)).toEqual(out.map((_, i) => i));
    expect(out.map((e) => `${e.type}${e.output_index ?? ""}`)).toEqual([
      "response.created", "response.in_progress",
      "response.output_item.added0", "response.content_part.added0", "response.output_text.delta0", "response.output_text.delta0",
      "response.output_text.done0", "response.content_part.done0", "response.output_item.done0",
      "response.output_item.added1", "response.function_call_arguments.delta1", "response.function_call_arguments.done1", "response.output_item.done1",
      "response.output_item.added2", "response.function_call_arguments.delta2", "response.function_call_arguments.done2", "response.output_item.done2",
      "response.completed",
    ]);
    const final = out.at(-1)!.response;
    expect(final.status).toBe("completed");
    expect(final.output.map((o: any) => o.type)).toEqual(["message", "function_call", "function_call"]);
    expect(final.output[0].content[0].text).toBe("Let me check.\n");
    expect(final.output[1]).toMatchObject({ name: "get_weather", arguments: '{"city":"Oslo"}', status: "completed" });
    expect(final.output[2]).toMatchObject({ name: "get_time", arguments: "{}" });
    expect(final.tool_choice).toBe("auto");
    expect(final.tools.map((x: any) => x.name)).toEqual(["get_weather", "get_time"]);
  });

  test("no call: the text is the message; nothing at all: an empty message", async () => {
    const text = await events(["Just ", "text."], TOOLS);
    expect(text.at(-1)!.response.output).toMatchObject([{ type: "message", content: [{ text: "Just text." }] }]);
    const empty = await events([""], null);
    expect(empty.map((e) => e.type)).toEqual([
      "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
      "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
    ]);
  });
});
