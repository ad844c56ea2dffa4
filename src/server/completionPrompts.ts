/**
 * The `prompt` of /v1/completions in its four forms (string, list of strings, token ids, list of
 * token-id lists) turned into token ids, each with its text (echo needs it).
 */
import type { Tokenizer } from "../tokenizer/tokenizer";
import { invalidParam } from "./errors";
import { checkNumber } from "./requestParams";
import { checkTextLength, encodeTexts } from "./textLimit";

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

/** Checks every text's length first, so a long list is refused before any of it is tokenized. */
async function fromTexts(params: string[], texts: string[], tokenizer: Tokenizer, maxChars: number): Promise<PromptInput[]> {
  texts.forEach((text, i) => checkTextLength(params[i]!, text, maxChars));
  const ids = await encodeTexts(tokenizer, texts, { addSpecialTokens: true });
  return ids.map((promptIds, i) => {
    if (promptIds.length === 0) throw invalidParam(params[i]!, `'${params[i]}' is empty: it encodes to no tokens.`);
    return { ids: promptIds, text: texts[i]! };
  });
}

function fromIds(param: string, raw: unknown[], tokenizer: Tokenizer, maxModelLen: number): PromptInput {
  // Refused before it is decoded (for echo): a list that long can never run.
  if (raw.length >= maxModelLen)
    throw invalidParam(
      param,
      `This model's maximum context length is ${maxModelLen} tokens, but '${param}' holds ${raw.length} token ids. Please shorten it.`,
      "context_length_exceeded",
    );
  const ids = checkIds(param, raw, tokenizer.vocabSize);
  return { ids, text: tokenizer.decode(ids) };
}

/** How long a prompt may be: in characters before tokenizing, in tokens after. */
export interface PromptLimits {
  maxChars: number;
  maxModelLen: number;
}

/**
 * Parses `prompt`; every form is normalized to a list of prompts (one engine request each). Texts
 * over `maxChars` characters and id lists that cannot fit are refused before any work; long texts
 * are tokenized off the serving thread.
 */
export async function readCompletionPrompts(raw: unknown, tokenizer: Tokenizer, limits: PromptLimits): Promise<PromptInput[]> {
  const { maxChars, maxModelLen } = limits;
  if (raw === undefined) throw invalidParam("prompt", "'prompt' is required.");
  if (Array.isArray(raw) && raw.length > MAX_PROMPTS) throw invalidParam("prompt", `'prompt' may hold at most ${MAX_PROMPTS} prompts.`);
  if (typeof raw === "string") return fromTexts(["prompt"], [raw], tokenizer, maxChars);
  if (isIdList(raw)) return [fromIds("prompt", raw, tokenizer, maxModelLen)];
  if (Array.isArray(raw) && raw.length > 0 && raw.every((x) => typeof x === "string"))
    return fromTexts(raw.map((_, i) => `prompt[${i}]`), raw as string[], tokenizer, maxChars);
  if (Array.isArray(raw) && raw.length > 0 && raw.every(Array.isArray))
    return raw.map((ids, i) => fromIds(`prompt[${i}]`, ids as unknown[], tokenizer, maxModelLen));
  throw invalidParam(
    "prompt",
    "'prompt' must be a string, a list of strings, a list of token ids, or a list of token-id lists (non-empty).",
  );
}
