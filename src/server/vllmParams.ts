/**
 * Request fields vLLM users send beyond OpenAI's, shared by /v1/completions and
 * /v1/chat/completions: include_stop_str_in_output, skip_special_tokens,
 * spaces_between_special_tokens, bad_words, allowed_token_ids, truncate_prompt_tokens and
 * prompt_logprobs.
 */
import type { SamplingOptions } from "../engine/samplingOptions";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { invalidParam } from "./errors";
import { checkTokenIds } from "./requestParams";
import type { SamplingFieldsBody } from "./schemas/samplingSchema";

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

/** Maps the vLLM sampling extras (undefined fields are left out; spaces_between_special_tokens, like vLLM's with a fast tokenizer, changes nothing). */
export function readVllmSampling(b: SamplingFieldsBody, tokenizer: Tokenizer): VllmSampling {
  const out: VllmSampling = {};
  if (b.include_stop_str_in_output !== undefined) out.includeStopStrInOutput = b.include_stop_str_in_output;
  if (b.skip_special_tokens !== undefined) out.skipSpecialTokens = b.skip_special_tokens;
  const words = typeof b.bad_words === "string" ? [b.bad_words] : b.bad_words;
  if (words !== undefined && words.length > 0) out.badWords = tokenizeBadWords(words, tokenizer);
  const allowed = readAllowedTokenIds(b.allowed_token_ids, tokenizer.vocabSize);
  if (allowed !== undefined) out.allowedTokenIds = allowed;
  return out;
}

/** vLLM's allowed_token_ids: a non-empty list of token ids, the only ones sampled. */
export function readAllowedTokenIds(ids: number[] | undefined, vocabSize: number): number[] | undefined {
  if (ids === undefined) return undefined;
  if (ids.length === 0) throw invalidParam("allowed_token_ids", "'allowed_token_ids' must not be empty.");
  checkTokenIds("allowed_token_ids", ids, vocabSize);
  return ids;
}

/**
 * truncate_prompt_tokens: keep the last k prompt tokens (vLLM's left truncation); -1 means the
 * model's context. Returns undefined when not given.
 */
export function readTruncation(k: number | undefined, maxModelLen: number): number | undefined {
  if (k === undefined) return undefined;
  if (k === 0) throw invalidParam("truncate_prompt_tokens", "'truncate_prompt_tokens' must be >= 1, or -1 for the model's context.");
  return k === -1 ? maxModelLen : k;
}

/** The last `keep` ids of a prompt (all of them when `keep` is undefined). */
export function truncatePrompt(ids: number[], keep: number | undefined): number[] {
  return keep === undefined || ids.length <= keep ? ids : ids.slice(ids.length - keep);
}

/** The chat-only combinations vLLM refuses: a generation prompt after a message being continued, prompt logprobs in a stream. */
export function checkChatExtras(addGenerationPrompt: boolean, continueFinal: boolean, promptLogprobs: number | undefined, stream: boolean): void {
  if (addGenerationPrompt && continueFinal)
    throw invalidParam("continue_final_message", "'continue_final_message' and 'add_generation_prompt' cannot both be true.");
  if (promptLogprobs !== undefined && stream) throw invalidParam("prompt_logprobs", "'prompt_logprobs' is not available when 'stream' is true.");
}
