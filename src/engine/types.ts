/**
 * The engine as its callers see it (CLI, pipeline(), HTTP and gRPC servers, load balancer).
 * The engine loop itself runs off the serving thread; this interface is all async.
 */
import type { SamplingOptions } from "./samplingOptions";
import type { Tokenizer } from "../tokenizer/tokenizer";
import type { HistogramSnapshot } from "./histogram";
import type { SpecDecodeStats } from "./speculative/speculator";
import type { GrammarMetrics } from "../grammar/grammarMetrics";

export type FinishReason = "stop" | "length" | "abort";

/** Logprob information for one generated token (raw model distribution). */
export interface TokenLogprob {
  id: number;
  logprob: number;
  /** Top-k alternatives, most likely first: [id, logprob]. */
  top: [number, number][];
}

/** New output of one sample of one request since the previous delta. */
export interface GenerationDelta {
  /** Which of the request's n samples (0-based). */
  index: number;
  /** Token ids generated since the last delta. */
  tokenIds: number[];
  /** Text since the last delta: never a broken UTF-8 char, never part of a stop string. */
  text: string;
  logprobs?: TokenLogprob[];
  /**
   * On the sample's first delta when promptLogprobs was asked: one entry per prompt token, null
   * for the first (nothing comes before it).
   */
  promptLogprobs?: (TokenLogprob | null)[];
  /**
   * On the sample's first delta: prompt tokens its first admission found in the prefix cache
   * (OpenAI's usage.prompt_tokens_details.cached_tokens).
   */
  cachedTokens?: number;
  /** Set on the sample's last delta. */
  finishReason?: FinishReason;
  /** The stop string or stop token id that ended the sample, if one did. */
  stopReason?: string | number;
}

export interface GenerateRequest {
  requestId: string;
  promptIds: number[];
  sampling: SamplingOptions;
  /**
   * Samples of the same client request before this prompt's (prompt j of a list of prompts with n
   * samples each: j * n; default 0). Fair share orders sequences by sample index, so a request of
   * many prompts takes turns with other requests as one of many samples does.
   */
  firstSample?: number;
}

export interface EngineMetrics {
  requestsWaiting: number;
  requestsRunning: number;
  kvBlocksTotal: number;
  kvBlocksFree: number;
  promptTokensTotal: number;
  generationTokensTotal: number;
  requestsFinishedTotal: number;
  preemptionsTotal: number;
  stepsTotal: number;
  /** Seconds from arrival to the first forward pass, per request (optional for remote engines). */
  queueTimeSeconds?: HistogramSnapshot;
  /** Tokens per forward pass. */
  iterationTokens?: HistogramSnapshot;
  /** Prefix cache: tokens looked up at admission, and tokens found (vLLM's queries and hits). */
  prefixCacheQueriesTotal?: number;
  prefixCacheHitsTotal?: number;
  /** Speculative decoding counters (vLLM's spec_decode_*), when it is on. */
  specDecode?: SpecDecodeStats;
  /** Structured outputs' counters: compiles, masks, grammar Workers (absent from older replicas). */
  grammar?: GrammarMetrics;
}

/** Thrown by generate() when the waiting queue is full (HTTP 503 with Retry-After). */
export class EngineOverloadedError extends Error {
  override name = "EngineOverloadedError";
}

/** Thrown by generate() for a request the engine can never run (e.g. longer than the context). */
export class RequestRejectedError extends Error {
  override name = "RequestRejectedError";
}

/**
 * Fails the requests of a forward pass that failed inside libfastgen (its fg_last_error text in
 * the message); the engine goes on serving the others (HTTP 500 with code engine_error).
 */
export class EngineStepError extends Error {
  override name = "EngineStepError";
}

export interface EngineClient {
  readonly modelName: string;
  /** Longest prompt + generation the engine accepts. */
  readonly maxModelLen: number;
  readonly tokenizer: Tokenizer;
  /** Tokens the KV cache holds (blocks times block size), where the engine knows it. */
  readonly kvCacheTokens?: number;
  /**
   * Queues the request and yields its deltas until every sample has finished. Aborting the
   * signal (or breaking out of the loop) aborts the request and frees its KV blocks.
   */
  generate(request: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerationDelta>;
  metrics(): EngineMetrics;
  shutdown(): Promise<void>;
}
