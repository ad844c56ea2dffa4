/**
 * The sampling fields /v1/completions and /v1/chat/completions share (OpenAI's and vLLM's, output
 * constraints included), with their types and ranges. What depends on the model (token ids below its vocabulary) or on other
 * fields (max_tokens against max_completion_tokens, best_of equal to n) is checked by the handler.
 */
import type { Static } from "@sinclair/typebox";
import { Type as t } from "@sinclair/typebox";
import { MAX_STOP_TOKEN_IDS } from "../../engine/stop";
import { int, num, opt } from "./fields";
import { structuredProperties } from "./structuredSchema";

/** Most samples one request may ask for. */
export const MAX_N = 128;
/** Most bad words one request may list, and the longest one, in characters. */
export const MAX_BAD_WORDS = 128;
export const MAX_BAD_WORD_CHARS = 256;
/** Most prompt logprobs alternatives per token (vLLM's default cap). */
export const MAX_PROMPT_LOGPROBS = 20;
/** The longest cache salt accepted (it is hashed into every prompt's first block). */
export const MAX_CACHE_SALT_CHARS = 1024;

const tokenIds = (description: string, maxItems?: number) => t.Array(int(0), { description, ...(maxItems ? { maxItems } : {}) });

/** `stop`: one string or a list (at most 4 non-empty strings: checked with its message by the handler). */
export const stopSchema = t.Union([t.String(), t.Array(t.String())], { description: "a string or a list of strings" });

/** Fields of both endpoints. */
export const samplingProperties = {
  model: opt(t.String({ description: "The served model's name (optional)." })),
  max_tokens: opt(int(0, undefined, "Most tokens to generate.")),
  max_completion_tokens: opt(int(0, undefined, "Most tokens to generate (OpenAI's newer name for max_tokens).")),
  min_tokens: opt(int(0, undefined, "Tokens generated before EOS or a stop token may end the output.")),
  n: opt(int(1, MAX_N, "Samples per prompt.")),
  best_of: opt(int(1, undefined, "Only equal to n.")),
  temperature: opt(num(0, 2)),
  top_p: opt(num(0, 1, undefined, true)),
  top_k: opt(int(-1, undefined, "-1 or 0: off.")),
  min_p: opt(num(0, 1)),
  seed: opt(int(0)),
  ignore_eos: opt(t.Boolean()),
  stop: opt(stopSchema),
  stop_token_ids: opt(tokenIds("Token ids that end the output.", MAX_STOP_TOKEN_IDS)),
  presence_penalty: opt(num(-2, 2)),
  frequency_penalty: opt(num(-2, 2)),
  repetition_penalty: opt(num(0, 2, undefined, true)),
  logit_bias: opt(t.Record(t.String(), num(-100, 100), { description: "Token id -> bias in [-100, 100]." })),
  cache_salt: opt(t.String({ minLength: 1, maxLength: MAX_CACHE_SALT_CHARS, description: "Prefix-cache salt: requests share cached blocks only with equal salts." })),
  user: opt(t.String()),
  stream: opt(t.Boolean()),
  stream_options: opt(t.Object({ include_usage: opt(t.Boolean()), continuous_usage_stats: opt(t.Boolean()) }, { additionalProperties: true })),
  // vLLM's extras
  include_stop_str_in_output: opt(t.Boolean()),
  skip_special_tokens: opt(t.Boolean()),
  spaces_between_special_tokens: opt(t.Boolean({ description: "Accepted; no effect with a fast tokenizer (as in vLLM)." })),
  bad_words: opt(
    t.Union([t.String({ maxLength: MAX_BAD_WORD_CHARS }), t.Array(t.String({ maxLength: MAX_BAD_WORD_CHARS }), { maxItems: MAX_BAD_WORDS })], {
      description: `a word or a list of at most ${MAX_BAD_WORDS} words of at most ${MAX_BAD_WORD_CHARS} characters (words that may not be generated)`,
    }),
  ),
  allowed_token_ids: opt(tokenIds("The only token ids that may be sampled.")),
  truncate_prompt_tokens: opt(int(-1, undefined, "Keep the last k prompt tokens; -1: the model's context.")),
  prompt_logprobs: opt(int(0, MAX_PROMPT_LOGPROBS)),
  // output constraints (at most one)
  ...structuredProperties,
} as const;


const SamplingObject = t.Object(samplingProperties);
/** The shared sampling fields of a validated body. */
export type SamplingFieldsBody = Static<typeof SamplingObject>;
