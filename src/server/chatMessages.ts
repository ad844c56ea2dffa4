/**
 * The `messages` of /v1/chat/completions (and /tokenize) rendered through the model's chat
 * template into prompt token ids. Their shape is the schema's (schemas/chatSchema.ts); checked
 * here: the role, content required but for the assistant, text parts only, tool_calls only on
 * assistant messages, and no other fields FastGen does not support (a 400 naming them, never
 * ignored). Tool calls and `tool` results are rendered by tools/toolMessages.ts.
 */
import type { ChatMessage } from "../tokenizer/chatTemplate";
import { ChatTemplateError } from "../tokenizer/chatTemplate";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { TokenizerBusyError } from "../tokenizer/tokenizerPool";
import { invalidParam, overloaded, unsupportedParam } from "./errors";
import { describe } from "./requestParams";
import type { ChatMessageBody, ToolCallBody } from "./schemas/chatSchema";
import { checkTextLength } from "./textLimit";

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function checkContent(at: string, role: string, content: ChatMessageBody["content"]): ChatMessage["content"] {
  if (typeof content === "string") return content;
  if (content === null || content === undefined) {
    if (role === "assistant") return null;
    throw invalidParam(`${at}.content`, `'${at}.content' is required for role '${role}'.`);
  }
  return content.map((part, j) => {
    const where = `${at}.content[${j}]`;
    const { type, text, ...rest } = part;
    if (type !== "text") throw unsupportedParam(`${where}.type`, `Only "text" content parts are supported, got ${describe(type)}.`);
    if (typeof text !== "string") throw invalidParam(`${where}.text`, `'${where}.text' is required.`);
    for (const [key, v] of Object.entries(rest)) if (v !== null) throw unsupportedParam(`${where}.${key}`);
    return { type, text };
  });
}

function checkMessage(m: ChatMessageBody, i: number): ChatMessage {
  const at = `messages[${i}]`;
  const { role, content, name, tool_calls, tool_call_id, ...rest } = m;
  if (!ROLES.has(role))
    throw invalidParam(`${at}.role`, `'${at}.role' must be one of ${[...ROLES].join(", ")}, got '${role}'.`);
  const out: ChatMessage = { role, content: checkContent(at, role, content) };
  if (typeof name === "string") out.name = name;
  if (tool_calls !== undefined && tool_calls !== null && tool_calls.length > 0) {
    if (role !== "assistant") throw invalidParam(`${at}.tool_calls`, `'${at}.tool_calls' is only allowed on assistant messages.`);
    out.tool_calls = checkToolCalls(`${at}.tool_calls`, tool_calls);
  }
  if (typeof tool_call_id === "string") out.tool_call_id = tool_call_id;
  for (const [key, v] of Object.entries(rest)) if (v !== null) throw unsupportedParam(`${at}.${key}`);
  return out;
}

/** Assistant tool calls (typed by the schema; `function` is checked here so a call without it is named as a whole). */
function checkToolCalls(at: string, calls: ToolCallBody[]): ChatMessage["tool_calls"] {
  return calls.map((c, j) => {
    const f = c.function;
    if (f === undefined)
      throw invalidParam(`${at}[${j}]`, `'${at}[${j}]' must be {"id", "type": "function", "function": {"name", "arguments": JSON text}}.`);
    return { id: typeof c.id === "string" ? c.id : `call_${j}`, type: "function", function: { name: f.name, arguments: f.arguments } };
  });
}

/** The chat of validated `messages` (non-empty, by the schema). */
export function readMessages(messages: ChatMessageBody[]): ChatMessage[] {
  return messages.map(checkMessage);
}

/** The text of a message's content (parts joined by newlines, as the template sees them). */
export function contentText(m: ChatMessage): string {
  if (typeof m.content === "string") return m.content;
  return (m.content ?? []).map((p) => p.text ?? "").join("\n");
}

/** A rendered chat prompt and its token ids. */
export interface RenderedChat {
  text: string;
  ids: number[];
}

/** How to render a chat: template override, generation prompt, extra template variables. */
export interface ChatRenderOptions {
  template?: string;
  /** Longest rendered text that is tokenized (longer is a 400: it cannot fit the context). */
  maxChars: number;
  addGenerationPrompt: boolean;
  /** The answer continues the final message: the prompt ends where its text ends (vLLM/transformers' continue_final_message). */
  continueFinalMessage?: boolean;
  extra?: Record<string, unknown>;
  /** OpenAI tool definitions for the template's `tools` variable. */
  tools?: unknown[];
}

/**
 * Renders the chat and encodes it (the template writes BOS itself, so no special tokens are added
 * unless asked), off the serving thread when the chat is long. Content that cannot fit the context
 * is refused before the template runs.
 */
export async function renderMessages(
  tokenizer: Tokenizer,
  messages: ChatMessage[],
  options: ChatRenderOptions & { addSpecialTokens?: boolean },
): Promise<RenderedChat> {
  checkTextLength("messages", { length: messages.reduce((n, m) => n + contentLength(m), 0) }, options.maxChars);
  const { maxChars, continueFinalMessage, ...render } = options;
  let rendered: RenderedChat;
  try {
    rendered = await tokenizer.encodeChat(messages, render);
    if (continueFinalMessage) rendered = await cutAfterFinal(tokenizer, messages, rendered, render.addSpecialTokens ?? false);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw invalidParam("messages", `Cannot apply the chat template: ${e.message}`, "chat_template_error");
    if (e instanceof TokenizerBusyError) throw overloaded(e.message);
    throw e;
  }
  checkTextLength("messages", rendered.text, maxChars);
  if (rendered.ids.length === 0) throw invalidParam("messages", "The rendered chat prompt is empty.");
  return rendered;
}

function contentLength(m: ChatMessage): number {
  if (typeof m.content === "string") return m.content.length;
  return (m.content ?? []).reduce((n, p) => n + (p.text?.length ?? 0), 0);
}

/** The rendered chat cut right after the final message's text (as transformers does), re-encoded. */
async function cutAfterFinal(tokenizer: Tokenizer, messages: ChatMessage[], rendered: RenderedChat, addSpecialTokens: boolean): Promise<RenderedChat> {
  const final = contentText(messages[messages.length - 1]!).trim();
  const at = final === "" ? -1 : rendered.text.lastIndexOf(final);
  if (at < 0)
    throw invalidParam("continue_final_message", "'continue_final_message' needs a final message whose text appears in the rendered chat prompt.");
  const text = rendered.text.slice(0, at + final.length);
  return { text, ids: await tokenizer.encodeAsync(text, { addSpecialTokens }) };
}
