/**
 * The work a tokenizer does for a request, as plain data so it can run on this thread or in a
 * tokenizer worker (tokenizerPool.ts) with the same code and the same result: encode a text, or
 * render a chat with its template and encode that.
 */
import type { ChatMessage, ChatTemplateSource, RenderChatOptions } from "./chatTemplate";
import { ChatTemplateError, renderChat } from "./chatTemplate";

/** What a task needs of a tokenizer (Tokenizer is one): its encoder and chat templates. */
export interface TaskTokenizer extends ChatTemplateSource {
  encode(text: string, options: { addSpecialTokens: boolean }): number[];
}

/** One unit of work. A chat's template already writes BOS, so its addSpecialTokens is usually false. */
export type TokenizerTask =
  | { type: "encode"; text: string; addSpecialTokens: boolean }
  | { type: "chat"; messages: ChatMessage[]; options: RenderChatOptions; addSpecialTokens: boolean };

/** What a task gives: the ids, and for a chat the rendered text. */
export interface TaskResult {
  ids: number[];
  text?: string;
}

/** A task's failure as it crosses threads: the error's name and message (and ChatTemplateError's flag). */
export interface TaskError {
  name: string;
  message: string;
  fromTemplate?: boolean;
}

/**
 * Rough size of a task in characters of tokenizer work, what the inline threshold and the pool's
 * queue bound count: a message costs 2-20 µs to render, about 64 characters' worth of encoding.
 */
export function taskCost(task: TokenizerTask): number {
  if (task.type === "encode") return task.text.length;
  let chars = 0;
  for (const m of task.messages) {
    chars += 64;
    if (typeof m.content === "string") chars += m.content.length;
    else for (const part of m.content ?? []) chars += typeof part.text === "string" ? part.text.length : 0;
  }
  return chars;
}

/** Runs a task; failures throw ChatTemplateError or the tokenizer's own errors. */
export function runTask(tokenizer: TaskTokenizer, task: TokenizerTask): TaskResult {
  const encode = { addSpecialTokens: task.addSpecialTokens };
  if (task.type === "encode") return { ids: tokenizer.encode(task.text, encode) };
  const text = renderChat(tokenizer, task.messages, task.options);
  return { text, ids: tokenizer.encode(text, encode) };
}

/** A thrown error as data for postMessage. */
export function toTaskError(e: unknown): TaskError {
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message, fromTemplate: err instanceof ChatTemplateError ? err.fromTemplate : undefined };
}
