import type { StructuredOutput } from "../grammar/spec";

/** What a caller may ask of one generation (the CLI, pipeline() and the HTTP layer map onto it). */
export interface SamplingOptions {
  maxTokens: number;
  minTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  topP?: number;
  /** <= 0 = off. */
  topK?: number;
  minP?: number;
  seed?: number;
  /** Top-K logprobs per generated token (0 = none). */
  logprobs?: number;
  /** Logprobs of the prompt's tokens (each given the ones before it) plus their top K; unset = none. CPU backend. */
  promptLogprobs?: number;
  ignoreEos?: boolean;
  stopTokenIds?: number[];
  stop?: string[];
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
  logitBias?: Record<number, number>;
  /**
   * Prefix-cache salt (vLLM's cache_salt): requests share cached KV blocks only when their salts
   * are equal, so one tenant cannot time another's prompts. Unset = "".
   */
  cacheSalt?: string;
  /** Samples per prompt. */
  n?: number;
  /**
   * Keep the stop string, stop token or EOS that ended the text in it (vLLM's
   * include_stop_str_in_output); default false: a stop token's text is dropped, as in vLLM.
   */
  includeStopStrInOutput?: boolean;
  /** Leave special tokens out of the text (default true). */
  skipSpecialTokens?: boolean;
  /** Token sequences that may not be generated (vLLM's bad_words, tokenized): each one's last token is banned after the rest. */
  badWords?: number[][];
  /** The output must match this (JSON schema, regex, choice, grammar): XGrammar masks each sampled token. */
  structured?: StructuredOutput;
  /** vLLM's allowed_token_ids: only these ids are sampled (non-empty); unset = any. */
  allowedTokenIds?: number[];
}

/** Sampling options before max tokens is settled (a server settles it from the prompt length). */
export type SamplingBase = Omit<SamplingOptions, "maxTokens" | "logprobs">;
