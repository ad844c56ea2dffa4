/**
 * The `messages` of /v1/chat/completions checked and rendered through the model's chat template
 * into prompt token ids. Content is a string or a list of {type:"text"} parts (other part types
 * are a 400 that names the field); assistant tool_calls and `tool` results are checked here and
 * rendered by tools/toolMessages.ts.
 */
import type { ChatMessage } from "../tokenizer/chatTemplate";
import { ChatTemplateError } from "../tokenizer/chatTemplate";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { TokenizerBusyError } from "../tokenizer/tokenizerPool";
import { invalidParam, overloaded, unsupportedParam } from "./errors";
import { describe } from "./requestParams";
import { checkTextLength } from "./textLimit";

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function checkContent(at: string, role: string, content: unknown): ChatMessage["content"] {
  if (typeof content === "string") return content;
  if (content === null || content === undefined) {
    if (role === "assistant") return null;
    throw invalidParam(`${at}.content`, `'${at}.content' is required for role '${role}'.`);
  }
  if (!Array.isArray(content))
    throw invalidParam(`${at}.content`, `'${at}.content' must be a string or a list of content parts.`);
  return content.map((part, j) => {
    const where = `${at}.content[${j}]`;
    if (typeof part !== "object" || part === null || Array.isArray(part))
      throw invalidParam(where, `'${where}' must be an object like {"type": "text", "text": "..."}.`);
    const { type, text, ...rest } = part as Record<string, unknown>;
    if (type !== "text") throw unsupportedParam(`${where}.type`, `Only "text" content parts are supported, got ${describe(type)}.`);
    if (typeof text !== "string") throw invalidParam(`${where}.text`, `'${where}.text' must be a string.`);
    for (const [key, v] of Object.entries(rest)) if (v !== null) throw unsupportedParam(`${where}.${key}`);
    return { type, text };
  });
}

function checkMessage(m: unknown, i: number): ChatMessage {
  const at = `messages[${i}]`;
  if (typeof m !== "object" || m === null || Array.isArray(m)) throw invalidParam(at, `'${at}' must be an object.`);
  const { role, content, name, tool_calls, tool_call_id, ...rest } = m as Record<string, unknown>;
  if (typeof role !== "string") throw invalidParam(`${at}.role`, `'${at}.role' must be a string.`);
  if (!ROLES.has(role))
    throw invalidParam(`${at}.role`, `'${at}.role' must be one of ${[...ROLES].join(", ")}, got '${role}'.`);
  const out: ChatMessage = { role, content: checkContent(at, role, content) };
  if (name !== undefined && name !== null) {
    if (typeof name !== "string") throw invalidParam(`${at}.name`, `'${at}.name' must be a string.`);
    out.name = name;
  }
  if (tool_calls !== undefined && tool_calls !== null && !(Array.isArray(tool_calls) && tool_calls.length === 0)) {
    if (role !== "assistant") throw invalidParam(`${at}.tool_calls`, `'${at}.tool_calls' is only allowed on assistant messages.`);
    out.tool_calls = checkToolCalls(`${at}.tool_calls`, tool_calls);
  }
  if (tool_call_id !== undefined && tool_call_id !== null) {
    if (typeof tool_call_id !== "string") throw invalidParam(`${at}.tool_call_id`, `'${at}.tool_call_id' must be a string.`);
    out.tool_call_id = tool_call_id;
  }
  for (const [key, v] of Object.entries(rest)) if (v !== null) throw unsupportedParam(`${at}.${key}`);
  return out;
}

function checkToolCalls(at: string, calls: unknown): ChatMessage["tool_calls"] {
  if (!Array.isArray(calls)) throw invalidParam(at, `'${at}' must be a list.`);
  return calls.map((c, j) => {
    const f = (c as Record<string, unknown> | null)?.function as Record<string, unknown> | undefined;
    if (typeof f?.name !== "string" || typeof f.arguments !== "string")
      throw invalidParam(`${at}[${j}]`, `'${at}[${j}]' must be {"id", "type": "function", "function": {"name", "arguments": JSON text}}.`);
    const id = (c as Record<string, unknown>).id;
    return { id: typeof id === "string" ? id : `call_${j}`, type: "function", function: { name: f.name, arguments: f.arguments } };
  });
}

/** Checks `messages` (required, non-empty). */
export function readMessages(raw: unknown): ChatMessage[] {
  if (raw === undefined) throw invalidParam("messages", "'messages' is required.");
  if (!Array.isArray(raw) || raw.length === 0) throw invalidParam("messages", "'messages' must be a non-empty list.");
  return raw.map(checkMessage);
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
