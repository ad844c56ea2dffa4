/**
 * Bounds before work on client text: a cheap length check before anything is tokenized, then
 * tokenizing that leaves the serving thread free (Tokenizer.encodeMany sends long texts to
 * worker threads). No token spells more than tokenizer.maxTokenChars characters, so a text longer
 * than that many per context slot cannot fit and is refused at once (Tokenizer.maxCharsFor).
 */
import type { EncodeOptions, Tokenizer } from "../tokenizer/tokenizer";
import { TokenizerBusyError } from "../tokenizer/tokenizerPool";
import { invalidParam, overloaded } from "./errors";

/** The most characters a text that fits `maxModelLen` tokens can have. */
export function maxPromptChars(tokenizer: Tokenizer, maxModelLen: number): number {
  return tokenizer.maxCharsFor(maxModelLen);
}

/** 400 context_length_exceeded when `text` is too long to fit, before spending time on it. */
export function checkTextLength(param: string, text: { length: number }, maxChars: number): void {
  if (text.length > maxChars)
    throw invalidParam(
      param,
      `'${param}' is ${text.length} characters long: more than this model's context can hold (at most ${maxChars} characters).`,
      "context_length_exceeded",
    );
}

/**
 * Token ids of texts already length-checked, encoded off the serving thread when long. A full
 * tokenizer queue is a 503 with Retry-After, like a full engine queue.
 */
export async function encodeTexts(tokenizer: Tokenizer, texts: readonly string[], options: EncodeOptions): Promise<number[][]> {
  try {
    return await tokenizer.encodeMany(texts, options);
  } catch (e) {
    if (e instanceof TokenizerBusyError) throw overloaded(e.message);
    throw e;
  }
}
