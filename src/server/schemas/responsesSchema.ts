/**
 * The body of POST /v1/responses: the subset of OpenAI's Responses API FastGen runs. Fields that
 * need stored state or built-in tools are typed here and refused by the handler with a message
 * naming them.
 */
import type { Static } from "@sinclair/typebox";
import { Type as t } from "@sinclair/typebox";
import { MAX_TOP_LOGPROBS } from "./chatSchema";
import { anyObject, body, int, num, opt } from "./fields";
import { MAX_TOOLS } from "./structuredSchema";

/** One input item: a message, a function_call or a function_call_output (other types are refused by the handler, naming them). */
const InputItem = t.Object(
  {
    type: opt(t.Union([t.String(), t.Null()])),
    role: opt(t.String({ description: "system, developer, user or assistant" })),
    content: opt(t.Union([t.String(), t.Array(anyObject("an input_text or output_text part"))])),
    call_id: opt(t.String({ description: "function_call, function_call_output: the call's id" })),
    name: opt(t.String({ description: "function_call: the function's name" })),
    arguments: opt(t.String({ description: "function_call: the arguments as JSON text" })),
    output: opt(t.Union([t.String(), t.Array(anyObject("an input_text part"))], { description: "function_call_output: the call's result" })),
  },
  { additionalProperties: true },
);

/** One tool: a function (built-in tools are refused by the handler, naming them). */
const ResponsesTool = t.Object(
  {
    type: t.String({ description: "function" }),
    name: opt(t.String({ description: "1-64 letters, digits, _ . or -" })),
    description: opt(t.Union([t.String(), t.Null()])),
    parameters: opt(t.Union([anyObject("a JSON schema object"), t.Null()])),
    strict: opt(t.Union([t.Boolean(), t.Null()])),
  },
  { additionalProperties: true },
);
export type ResponsesToolBody = Static<typeof ResponsesTool>;

export const ResponsesBody = body(
  {
    model: opt(t.String()),
    input: t.Union([t.String(), t.Array(InputItem, { minItems: 1 })], { description: "a string or a non-empty list of input items" }),
    instructions: opt(t.String()),
    max_output_tokens: opt(int(1)),
    temperature: opt(num(0, 2)),
    top_p: opt(num(0, 1, undefined, true)),
    top_k: opt(int(-1)),
    min_p: opt(num(0, 1)),
    repetition_penalty: opt(num(0, 2, undefined, true)),
    seed: opt(int(0)),
    allowed_token_ids: opt(t.Array(int(0), { description: "The only token ids that may be sampled." })),
    include: opt(t.Union([t.String(), t.Array(t.String())], { description: "a string or a list of strings" })),
    top_logprobs: opt(int(0, MAX_TOP_LOGPROBS)),
    metadata: opt(t.Record(t.String(), t.String(), { description: "String values, echoed in the response." })),
    user: opt(t.String()),
    stream: opt(t.Boolean()),
    store: opt(t.Boolean({ description: "Only false: nothing is stored." })),
    previous_response_id: opt(t.String({ description: "Not supported: nothing is stored." })),
    conversation: opt(t.Unknown({ description: "Not supported: nothing is stored." })),
    background: opt(t.Boolean({ description: "Only false." })),
    prompt: opt(t.Unknown({ description: "Not supported: stored prompt templates." })),
    tools: opt(t.Array(ResponsesTool, { maxItems: MAX_TOOLS, description: `Function tools (at most ${MAX_TOOLS}).` })),
    tool_choice: opt(t.Union([t.String(), anyObject("a named function")], { description: '"auto", "none", "required" or {"type": "function", "name": ...}' })),
    parallel_tool_calls: opt(t.Boolean()),
    max_tool_calls: opt(int(0)),
    text: opt(
      t.Object(
        { format: opt(t.Union([anyObject('{"type": "text" | "json_object" | "json_schema", name, schema, strict}'), t.Null()])) },
        { additionalProperties: true },
      ),
    ),
    reasoning: opt(anyObject("Not supported.")),
    truncation: opt(t.String({ description: 'Only "disabled".' })),
    service_tier: opt(t.String({ description: '"auto" or "default".' })),
    safety_identifier: opt(t.String()),
    prompt_cache_key: opt(t.String()),
    prompt_cache_retention: opt(t.String()),
    stream_options: opt(anyObject("Accepted; no effect.")),
  },
  "An OpenAI Responses API request (text generation; nothing stored).",
);
export type ResponsesBody = Static<typeof ResponsesBody>;
