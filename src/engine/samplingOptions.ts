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
}
