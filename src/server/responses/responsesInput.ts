/**
 * The `instructions` and `input` of POST /v1/responses as chat messages for the chat template:
 *   input: "text"                                   → one user message
 *   input: [{ role, content }, { type: "message", role, content }, ...]
 *     content: "text" | [{ type: "input_text" | "output_text" | "refusal", text }]
 *   instructions: "text"                            → a system message before them
 * Items that need server-side state or tools (item_reference, function_call, function_call_output,
 * reasoning) and non-text parts (input_image, input_file, input_audio) are a 400 naming them.
 */
import type { ChatContentPart, ChatMessage } from "../../tokenizer/chatTemplate";
import { invalidParam, unsupportedParam } from "../errors";
import { describe } from "../requestParams";
import type { ResponsesBody } from "../schemas/responsesSchema";

type InputItem = Exclude<ResponsesBody["input"], string>[number];

const ROLES = new Set(["system", "developer", "user", "assistant"]);
/** Part types whose text is the message's text (OpenAI writes assistant turns as output_text). */
const TEXT_PARTS = new Set(["input_text", "output_text", "text"]);
/** Why an item type cannot be run here, by type. */
const UNSUPPORTED_ITEMS: Record<string, string> = {
  item_reference: "FastGen stores no responses, so items cannot be referenced by id: send the item itself.",
  function_call: "Function tools need grammar-constrained decoding, which FastGen does not have yet.",
  function_call_output: "Function tools need grammar-constrained decoding, which FastGen does not have yet.",
  reasoning: "FastGen serves no reasoning items.",
};

function readContent(at: string, role: string, content: InputItem["content"]): string | ChatContentPart[] {
  if (typeof content === "string") return content;
  if (content === undefined) throw invalidParam(`${at}.content`, `'${at}.content' is required.`);
  return content.map((part, j) => {
    const where = `${at}.content[${j}]`;
    const { type, text, refusal } = part;
    if (type === "refusal" && role === "assistant" && typeof refusal === "string") return { type: "text", text: refusal };
    if (typeof type !== "string" || !TEXT_PARTS.has(type))
      throw unsupportedParam(`${where}.type`, `Only text parts (input_text, output_text) are supported, got ${describe(type)}.`);
    if (typeof text !== "string") throw invalidParam(`${where}.text`, `'${where}.text' must be a string.`);
    return { type: "text", text };
  });
}

function readItem(item: InputItem, i: number): ChatMessage {
  const at = `input[${i}]`;
  const { type, role, content } = item;
  if (type !== undefined && type !== null && type !== "message") {
    const why = typeof type === "string" ? UNSUPPORTED_ITEMS[type] : undefined;
    throw unsupportedParam(`${at}.type`, why ?? `Only message items are supported, got ${describe(type)}.`);
  }
  if (typeof role !== "string" || !ROLES.has(role))
    throw invalidParam(`${at}.role`, `'${at}.role' must be one of ${[...ROLES].join(", ")}, got ${describe(role)}.`);
  return { role, content: readContent(at, role, content) };
}

/** The chat a Responses request describes (instructions first); 400 for anything but text messages. */
export function readResponsesInput(instructions: string | undefined, input: ResponsesBody["input"]): ChatMessage[] {
  const messages: ChatMessage[] = instructions ? [{ role: "system", content: instructions }] : [];
  if (typeof input === "string") return [...messages, { role: "user", content: input }];
  return [...messages, ...input.map(readItem)];
}
