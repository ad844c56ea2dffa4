/**
 * The `instructions` and `input` of POST /v1/responses as chat messages for the chat template:
 *   input: "text"                                   → one user message
 *   input: [{ role, content }, { type: "message", role, content }, ...]
 *     content: "text" | [{ type: "input_text" | "output_text" | "refusal", text }]
 *   { type: "function_call", call_id, name, arguments } → an assistant message's tool_calls
 *     (consecutive calls, and calls right after an assistant message, join that message)
 *   { type: "function_call_output", call_id, output } → a `tool` message, as chat's
 *   instructions: "text"                            → a system message before them
 * Tool turns are then rendered as chat renders them (tools/toolMessages.ts). Items that need
 * server-side state (item_reference, reasoning) and non-text parts (input_image, input_file,
 * input_audio) are a 400 naming them.
 */
import type { ChatContentPart, ChatMessage } from "../../tokenizer/chatTemplate";
import { invalidParam, unsupportedParam } from "../errors";
import { describe } from "../requestParams";
import type { ResponsesBody } from "../schemas/responsesSchema";
import type { ToolCall } from "../tools/toolResponse";

type InputItem = Exclude<ResponsesBody["input"], string>[number];

const ROLES = new Set(["system", "developer", "user", "assistant"]);
/** Part types whose text is the message's text (OpenAI writes assistant turns as output_text). */
const TEXT_PARTS = new Set(["input_text", "output_text", "text"]);
/** Why an item type cannot be run here, by type. */
const UNSUPPORTED_ITEMS: Record<string, string> = {
  item_reference: "FastGen stores no responses, so items cannot be referenced by id: send the item itself.",
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

const required = (at: string, field: string, v: unknown): string => {
  if (typeof v !== "string" || v === "") throw invalidParam(`${at}.${field}`, `'${at}.${field}' is required (a non-empty string).`);
  return v;
};

function readCall(item: InputItem, at: string): ToolCall {
  return { id: required(at, "call_id", item.call_id), type: "function", function: { name: required(at, "name", item.name), arguments: item.arguments ?? "{}" } };
}

function readOutput(item: InputItem, at: string): ChatMessage {
  const id = required(at, "call_id", item.call_id);
  const { output } = item;
  if (output === undefined) throw invalidParam(`${at}.output`, `'${at}.output' is required.`);
  const parts = readContent(at, "tool", output);
  const content = typeof parts === "string" ? parts : parts.map((p) => p.text ?? "").join("");
  return { role: "tool", tool_call_id: id, content };
}

function readMessage(item: InputItem, at: string): ChatMessage {
  const { role, content } = item;
  if (typeof role !== "string" || !ROLES.has(role))
    throw invalidParam(`${at}.role`, `'${at}.role' must be one of ${[...ROLES].join(", ")}, got ${describe(role)}.`);
  return { role, content: readContent(at, role, content) };
}

/** Appends one item's message; a function_call joins the assistant message before it. */
function addItem(messages: ChatMessage[], item: InputItem, i: number): void {
  const at = `input[${i}]`;
  const { type } = item;
  if (type === undefined || type === null || type === "message") {
    messages.push(readMessage(item, at));
    return;
  }
  if (type === "function_call") {
    const call = readCall(item, at);
    const last = messages[messages.length - 1];
    if (last?.role === "assistant") last.tool_calls = [...((last.tool_calls as ToolCall[] | undefined) ?? []), call];
    else messages.push({ role: "assistant", content: null, tool_calls: [call] });
    return;
  }
  if (type === "function_call_output") {
    messages.push(readOutput(item, at));
    return;
  }
  const why = typeof type === "string" ? UNSUPPORTED_ITEMS[type] : undefined;
  throw unsupportedParam(`${at}.type`, why ?? `Only message, function_call and function_call_output items are supported, got ${describe(type)}.`);
}

/** The chat a Responses request describes (instructions first); 400 for items that cannot be run. */
export function readResponsesInput(instructions: string | undefined, input: ResponsesBody["input"]): ChatMessage[] {
  const messages: ChatMessage[] = instructions ? [{ role: "system", content: instructions }] : [];
  if (typeof input === "string") return [...messages, { role: "user", content: input }];
  input.forEach((item, i) => addItem(messages, item, i));
  return messages;
}
