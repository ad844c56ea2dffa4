/**
 * The `prompt` of /v1/completions in its four forms (string, list of strings, token ids, list of
 * token-id lists) turned into token ids, each with its text (echo needs it).
 */
import type { Tokenizer } from "../tokenizer/tokenizer";
import { invalidParam } from "./errors";
import { checkNumber } from "./requestParams";
import { checkTextLength } from "./textLimit";

/** Most prompts one request may batch. */
export const MAX_PROMPTS = 1024;

/** One prompt of a completions request. */
export interface PromptInput {
  ids: number[];
  text: string;
}

const isIdList = (v: unknown): v is unknown[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number");

function checkIds(param: string, ids: unknown[], vocabSize: number): number[] {
  if (ids.length === 0) throw invalidParam(param, `'${param}' must not be an empty list of token ids.`);
  return ids.map((x, i) => checkNumber(`${param}[${i}]`, x, { integer: true, min: 0, max: vocabSize - 1 }));
}

function fromText(param: string, text: string, tokenizer: Tokenizer, maxChars: number): PromptInput {
  checkTextLength(param, text, maxChars);
  const ids = tokenizer.encode(text, { addSpecialTokens: true });
  if (ids.length === 0) throw invalidParam(param, `'${param}' is empty: it encodes to no tokens.`);
  return { ids, text };
}

function fromIds(param: string, raw: unknown[], tokenizer: Tokenizer): PromptInput {
  const ids = checkIds(param, raw, tokenizer.vocabSize);
  return { ids, text: tokenizer.decode(ids) };
}

/**
 * Parses `prompt`; every form is normalized to a list of prompts (one engine request each). Texts
 * over `maxChars` characters are refused before they are tokenized.
 */
export function readCompletionPrompts(raw: unknown, tokenizer: Tokenizer, maxChars: number): PromptInput[] {
  if (raw === undefined) throw invalidParam("prompt", "'prompt' is required.");
  let prompts: PromptInput[];
  if (typeof raw === "string") prompts = [fromText("prompt", raw, tokenizer, maxChars)];
  else if (isIdList(raw)) prompts = [fromIds("prompt", raw, tokenizer)];
  else if (Array.isArray(raw) && raw.length > 0 && raw.every((x) => typeof x === "string"))
    prompts = raw.map((s, i) => fromText(`prompt[${i}]`, s as string, tokenizer, maxChars));
  else if (Array.isArray(raw) && raw.length > 0 && raw.every(Array.isArray))
    prompts = raw.map((ids, i) => fromIds(`prompt[${i}]`, ids as unknown[], tokenizer));
  else
    throw invalidParam(
      "prompt",
      "'prompt' must be a string, a list of strings, a list of token ids, or a list of token-id lists (non-empty).",
    );
  if (prompts.length > MAX_PROMPTS) throw invalidParam("prompt", `'prompt' may hold at most ${MAX_PROMPTS} prompts.`);
  return prompts;
}
