/** The body of POST /v1/chat/completions, and the chat messages /tokenize shares. */
import type { Static } from "@sinclair/typebox";
import { Type as t } from "@sinclair/typebox";
import { anyObject, body, int, opt } from "./fields";
import { samplingProperties } from "./samplingSchema";
import { toolProperties } from "./structuredSchema";

/** Most top_logprobs alternatives per token (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

/** A content part: text only (the handler refuses other types, naming them). */
const ContentPart = t.Object({ type: t.String({ description: "text" }), text: opt(t.String()) }, { additionalProperties: true });

/** An assistant's earlier tool call (`function` is checked by the handler, which names the whole call when it is missing). */
const ToolCall = t.Object(
  {
    id: opt(t.Union([t.String(), t.Null()])),
    type: opt(t.Union([t.String({ description: "function" }), t.Null()])),
    function: opt(t.Object({ name: t.String(), arguments: t.String({ description: "JSON text" }) }, { additionalProperties: true })),
  },
  { additionalProperties: true },
);
export type ToolCallBody = Static<typeof ToolCall>;

/** One message: system, developer, user, assistant or tool (the handler checks the role and the fields it does not support). */
export const ChatMessageSchema = t.Object(
  {
    role: t.String({ description: "system, developer, user, assistant or tool" }),
    content: opt(t.Union([t.String(), t.Array(ContentPart), t.Null()], { description: "a string, a list of content parts, or null (assistant)" })),
    name: opt(t.Union([t.String(), t.Null()])),
    tool_calls: opt(t.Union([t.Array(ToolCall, { description: "An assistant's tool calls." }), t.Null()])),
    tool_call_id: opt(t.Union([t.String({ description: "The call a tool message answers." }), t.Null()])),
  },
  { additionalProperties: true },
);

export type ChatMessageBody = Static<typeof ChatMessageSchema>;

export const MessagesSchema = t.Array(ChatMessageSchema, { minItems: 1, description: "a non-empty list of messages" });

/** Chat rendering fields (chat completions and /tokenize). */
export const chatTemplateProperties = {
  add_generation_prompt: opt(t.Boolean()),
  continue_final_message: opt(t.Boolean()),
  chat_template_kwargs: opt(anyObject("Extra variables for the chat template.")),
};

export const ChatCompletionsBody = body(
  {
    messages: MessagesSchema,
    ...samplingProperties,
    ...chatTemplateProperties,
    logprobs: opt(t.Boolean()),
    top_logprobs: opt(int(0, MAX_TOP_LOGPROBS)),
    echo: opt(t.Boolean({ description: "Start the answer with the last assistant message (vLLM)." })),
    ...toolProperties,
  },
  "An OpenAI chat completion request, with vLLM's extras.",
);
export type ChatCompletionsBody = Static<typeof ChatCompletionsBody>;
