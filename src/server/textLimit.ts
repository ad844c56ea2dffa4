/**
 * A cheap bound checked before client text is tokenized. Tokenizing runs on the serving thread at
 * about a microsecond per character, so an 8 MiB prompt would stall every other request for
 * seconds. No token spells more than tokenizer.maxTokenChars characters, so a text longer than
 * that many per context slot cannot fit the context and is refused at once (with slack for
 * normalizers that shorten text, e.g. NFKC composition).
 */
import type { Tokenizer } from "../tokenizer/tokenizer";
import { invalidParam } from "./errors";

/** Slack for normalizers that shorten text before it is split into tokens. */
const NORMALIZER_SLACK = 4;

/** The most characters a text that fits `maxModelLen` tokens can have. */
export function maxPromptChars(tokenizer: Tokenizer, maxModelLen: number): number {
  return NORMALIZER_SLACK * maxModelLen * tokenizer.maxTokenChars;
}

/** 400 context_length_exceeded when `text` is too long to fit, before spending time on it. */
export function checkTextLength(param: string, text: string, maxChars: number): void {
  if (text.length > maxChars)
    throw invalidParam(
      param,
      `'${param}' is ${text.length} characters long: more than this model's context can hold (at most ${maxChars} characters).`,
      "context_length_exceeded",
    );
}
