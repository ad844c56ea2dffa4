/**
 * Request fields vLLM users send beyond OpenAI's, shared by /v1/completions and
 * /v1/chat/completions: include_stop_str_in_output, skip_special_tokens,
 * spaces_between_special_tokens, bad_words, allowed_token_ids, truncate_prompt_tokens and
 * prompt_logprobs.
 */
import type { SamplingOptions } from "../engine/samplingOptions";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { invalidParam } from "./errors";
import type { RequestParams } from "./requestParams";

/** Most bad words one request may list, and the longest one, in characters. */
export const MAX_BAD_WORDS = 128;
export const MAX_BAD_WORD_CHARS = 256;
/** Most prompt logprobs alternatives per token (vLLM's default cap). */
export const MAX_PROMPT_LOGPROBS = 20;

/** The engine options these fields set. */
export type VllmSampling = Pick<SamplingOptions, "includeStopStrInOutput" | "skipSpecialTokens" | "badWords" | "allowedTokenIds">;

/**
 * Each bad word as token ids, with and without a leading space (vLLM's rule: the spaced form is
 * added when it is a different first token and as many tokens).
 */
function tokenizeBadWords(words: string[], tokenizer: Tokenizer): number[][] {
  const out: number[][] = [];
  for (const word of words) {
    const plain = tokenizer.encode(word.trimStart(), { addSpecialTokens: false });
    if (plain.length > 0) out.push(plain);
    const spaced = tokenizer.encode(` ${word.trimStart()}`, { addSpecialTokens: false });
    if (spaced.length > 0 && (plain.length === 0 || (spaced[0] !== plain[0] && spaced.length === plain.length))) out.push(spaced);
  }
  return out;
}

/** Reads the vLLM sampling extras (undefined fields are left out). */
export function readVllmSampling(p: RequestParams, tokenizer: Tokenizer): VllmSampling {
  const out: VllmSampling = {};
  const include = p.boolean("include_stop_str_in_output");
  if (include !== undefined) out.includeStopStrInOutput = include;
  const skip = p.boolean("skip_special_tokens");
  if (skip !== undefined) out.skipSpecialTokens = skip;
  // Accepted for vLLM clients; like vLLM with a fast tokenizer (tokenizer.json), it changes nothing.
  p.boolean("spaces_between_special_tokens");
  const words = p.stringList("bad_words");
  if (words !== undefined && words.length > 0) {
    if (words.length > MAX_BAD_WORDS) throw invalidParam("bad_words", `'bad_words' may hold at most ${MAX_BAD_WORDS} words, got ${words.length}.`);
    const long = words.findIndex((w) => w.length > MAX_BAD_WORD_CHARS);
    if (long >= 0) throw invalidParam("bad_words", `'bad_words[${long}]' is longer than ${MAX_BAD_WORD_CHARS} characters.`);
    out.badWords = tokenizeBadWords(words, tokenizer);
  }
  const allowed = readAllowedTokenIds(p, tokenizer.vocabSize);
  if (allowed !== undefined) out.allowedTokenIds = allowed;
  return out;
}

/** vLLM's allowed_token_ids: a non-empty list of token ids, the only ones sampled. */
export function readAllowedTokenIds(p: RequestParams, vocabSize: number): number[] | undefined {
  const ids = p.integerList("allowed_token_ids", { min: 0, max: vocabSize - 1 });
  if (ids !== undefined && ids.length === 0) throw invalidParam("allowed_token_ids", "'allowed_token_ids' must not be empty.");
  return ids;
}

/**
 * truncate_prompt_tokens: keep the last k prompt tokens (vLLM's left truncation); -1 means the
 * model's context. Returns undefined when not given.
 */
export function readTruncation(p: RequestParams, maxModelLen: number): number | undefined {
  const k = p.integer("truncate_prompt_tokens", { min: -1 });
  if (k === undefined) return undefined;
  if (k === 0) throw invalidParam("truncate_prompt_tokens", "'truncate_prompt_tokens' must be >= 1, or -1 for the model's context.");
  return k === -1 ? maxModelLen : k;
}

/** The last `keep` ids of a prompt (all of them when `keep` is undefined). */
export function truncatePrompt(ids: number[], keep: number | undefined): number[] {
  return keep === undefined || ids.length <= keep ? ids : ids.slice(ids.length - keep);
}

/** vLLM's prompt_logprobs: 0-20 alternatives per prompt token (undefined when not asked). */
export function readPromptLogprobs(p: RequestParams): number | undefined {
  return p.integer("prompt_logprobs", { min: 0, max: MAX_PROMPT_LOGPROBS });
}

/** The chat-only combinations vLLM refuses: a generation prompt after a message being continued, prompt logprobs in a stream. */
export function checkChatExtras(addGenerationPrompt: boolean, continueFinal: boolean, promptLogprobs: number | undefined, stream: boolean): void {
  if (addGenerationPrompt && continueFinal)
    throw invalidParam("continue_final_message", "'continue_final_message' and 'add_generation_prompt' cannot both be true.");
  if (promptLogprobs !== undefined && stream) throw invalidParam("prompt_logprobs", "'prompt_logprobs' is not available when 'stream' is true.");
}
