/**
 * The `prompt` of /v1/completions in its four forms (string, list of strings, token ids, list of
 * token-id lists) turned into token ids, each with its text (echo needs it). The forms are the
 * schema's (schemas/completionsSchema.ts); ids are checked against the vocabulary here.
 */
import type { Tokenizer } from "../tokenizer/tokenizer";
import { invalidParam } from "./errors";
import { checkTokenIds } from "./requestParams";
import type { CompletionsBody } from "./schemas/completionsSchema";
import { checkTextLength, encodeTexts } from "./textLimit";

/** One prompt of a completions request. */
export interface PromptInput {
  ids: number[];
  text: string;
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

function fromIds(param: string, raw: number[], tokenizer: Tokenizer, maxModelLen: number): PromptInput {
  // Refused before it is decoded (for echo): a list that long can never run.
  if (raw.length >= maxModelLen)
    throw invalidParam(
      param,
      `This model's maximum context length is ${maxModelLen} tokens, but '${param}' holds ${raw.length} token ids. Please shorten it.`,
      "context_length_exceeded",
    );
  checkTokenIds(param, raw, tokenizer.vocabSize);
  return { ids: raw, text: tokenizer.decode(raw) };
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
export async function readCompletionPrompts(raw: CompletionsBody["prompt"], tokenizer: Tokenizer, limits: PromptLimits): Promise<PromptInput[]> {
  const { maxChars, maxModelLen } = limits;
  if (typeof raw === "string") return fromTexts(["prompt"], [raw], tokenizer, maxChars);
  if (raw.every((x) => typeof x === "number")) return [fromIds("prompt", raw as number[], tokenizer, maxModelLen)];
  if (raw.every((x) => typeof x === "string")) return fromTexts(raw.map((_, i) => `prompt[${i}]`), raw as string[], tokenizer, maxChars);
  return (raw as number[][]).map((ids, i) => fromIds(`prompt[${i}]`, ids, tokenizer, maxModelLen));
}
