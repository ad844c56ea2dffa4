/**
 * The sampling fields /v1/completions and /v1/chat/completions share, mapped onto the engine's
 * SamplingOptions. Their types and ranges are the schema's (schemas/samplingSchema.ts); what is
 * checked here depends on the model (token ids) or on other fields. Logprobs differ between the
 * two endpoints and are read by each.
 */
import type { SamplingBase } from "../engine/samplingOptions";

export type { SamplingBase };
import { MAX_STOP_STRING_CHARS, MAX_STOP_STRINGS } from "../engine/stopStrings";
import { invalidParam, unsupportedParam } from "./errors";
import { checkTokenIds } from "./requestParams";
import { withSamplingDefaults } from "./samplingDefaults";
import type { SamplingFieldsBody } from "./schemas/samplingSchema";
import type { ServerContext } from "./serverContext";
import { readVllmSampling } from "./vllmParams";
import { readStructuredOutput } from "./structuredOutputs";


/** The shared sampling fields of a request. */
export interface ParsedSampling {
  sampling: SamplingBase;
  /** max_completion_tokens or max_tokens, when given (capped by generation_config's max_new_tokens). */
  maxTokens?: number;
  /** The most tokens any request may generate (generation_config's max_new_tokens; else Infinity). */
  maxTokensCap: number;
  n: number;
}

/** `stream` and `stream_options`. */
export interface StreamParams {
  stream: boolean;
  includeUsage: boolean;
  /** vLLM's continuous_usage_stats: every chunk carries the usage so far. */
  continuousUsage: boolean;
}

function readMaxTokens(b: SamplingFieldsBody, allowZero: boolean): number | undefined {
  const legacy = b.max_tokens;
  const modern = b.max_completion_tokens;
  if (!allowZero && (legacy === 0 || modern === 0)) {
    const param = modern === 0 ? "max_completion_tokens" : "max_tokens";
    throw invalidParam(param, `'${param}' must be an integer >= 1, got 0 (0 is prompt scoring: completions with echo).`);
  }
  if (legacy !== undefined && modern !== undefined && legacy !== modern)
    throw invalidParam("max_completion_tokens", "'max_tokens' and 'max_completion_tokens' disagree: give only one.");
  return modern ?? legacy;
}

function readLogitBias(raw: Record<string, number> | undefined, vocabSize: number): Record<number, number> | undefined {
  if (raw === undefined) return undefined;
  const out: Record<number, number> = {};
  for (const [key, bias] of Object.entries(raw)) {
    const id = Number(key);
    if (!/^\d+$/.test(key) || id >= vocabSize)
      throw invalidParam("logit_bias", `'logit_bias' keys must be token ids in [0, ${vocabSize}), got "${key}".`);
    out[id] = bias;
  }
  return out;
}

/** `stop`: up to 4 non-empty strings (OpenAI's limit), each of at most MAX_STOP_STRING_CHARS characters. */
function readStop(raw: string | string[] | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const stop = typeof raw === "string" ? [raw] : raw;
  if (stop.length > MAX_STOP_STRINGS) throw invalidParam("stop", `'stop' may hold at most ${MAX_STOP_STRINGS} strings, got ${stop.length}.`);
  if (stop.some((s) => s === "")) throw invalidParam("stop", "'stop' strings must not be empty.");
  const long = stop.findIndex((s) => s.length > MAX_STOP_STRING_CHARS);
  if (long >= 0)
    throw invalidParam("stop", `'stop[${long}]' is ${stop[long]!.length} characters long; stop strings may be at most ${MAX_STOP_STRING_CHARS}.`);
  return stop;
}

/**
 * Maps the shared sampling fields (and best_of, which must equal n, and vLLM's extras); fields
 * left unset take the model's generation_config defaults (samplingDefaults.ts).
 * `allowZeroMaxTokens`: max_tokens 0 is prompt scoring (completions with echo).
 */
export function readSamplingParams(
  b: SamplingFieldsBody,
  ctx: Pick<ServerContext, "tokenizer" | "samplingDefaults">,
  allowZeroMaxTokens = false,
): ParsedSampling {
  const vocabSize = ctx.tokenizer.vocabSize;
  const maxTokensCap = ctx.samplingDefaults.maxTokens ?? Infinity;
  const asked = readMaxTokens(b, allowZeroMaxTokens);
  const maxTokens = asked === undefined ? undefined : Math.min(asked, maxTokensCap);
  const minTokens = b.min_tokens;
  if (minTokens !== undefined && maxTokens !== undefined && minTokens > maxTokens)
    throw invalidParam("min_tokens", `'min_tokens' (${minTokens}) must not exceed max tokens (${maxTokens}).`);
  const n = b.n ?? 1;
  if (b.best_of !== undefined && b.best_of !== n)
    throw unsupportedParam("best_of", `Only best_of equal to n (${n}) is supported, got ${b.best_of}.`);
  const stop = readStop(b.stop);
  if (b.stop_token_ids) checkTokenIds("stop_token_ids", b.stop_token_ids, vocabSize);
  const sampling: SamplingBase = {
    minTokens,
    temperature: b.temperature,
    topP: b.top_p,
    topK: b.top_k,
    minP: b.min_p,
    seed: b.seed,
    ignoreEos: b.ignore_eos,
    stopTokenIds: b.stop_token_ids,
    stop: stop && stop.length > 0 ? stop : undefined,
    presencePenalty: b.presence_penalty,
    frequencyPenalty: b.frequency_penalty,
    repetitionPenalty: b.repetition_penalty,
    logitBias: readLogitBias(b.logit_bias, vocabSize),
    cacheSalt: b.cache_salt,
    n,
    structured: readStructuredOutput(b),
    ...readVllmSampling(b, ctx.tokenizer),
  };
  // `user` is accepted for compatibility; it only tags the request on OpenAI's side.
  for (const k of Object.keys(sampling) as (keyof SamplingBase)[]) if (sampling[k] === undefined) delete sampling[k];
  return { sampling: withSamplingDefaults(sampling, ctx.samplingDefaults), maxTokens, maxTokensCap, n };
}

/** Reads stream and stream_options (include_usage, vLLM's continuous_usage_stats; other keys are ignored). */
export function readStreamParams(b: Pick<SamplingFieldsBody, "stream" | "stream_options">): StreamParams {
  const stream = b.stream ?? false;
  const options = b.stream_options;
  if (options === undefined) return { stream, includeUsage: false, continuousUsage: false };
  if (!stream) throw invalidParam("stream_options", "'stream_options' is only allowed when 'stream' is true.");
  return { stream, includeUsage: options.include_usage === true, continuousUsage: options.continuous_usage_stats === true };
}

/** Settles max tokens: the request's value, else `fallback`; prompt + max tokens must fit the context. */
export function settleMaxTokens(requested: number | undefined, fallback: number, promptLen: number, maxModelLen: number, what: string): number {
  if (promptLen >= maxModelLen)
    throw invalidParam(
      what,
      `This model's maximum context length is ${maxModelLen} tokens, but the ${what} is ${promptLen} tokens. Please shorten it.`,
      "context_length_exceeded",
    );
  const maxTokens = requested ?? Math.min(fallback, maxModelLen - promptLen);
  if (promptLen + maxTokens > maxModelLen)
    throw invalidParam(
      "max_tokens",
      `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${promptLen + maxTokens} tokens ` +
        `(${promptLen} in the ${what}, ${maxTokens} for the completion). Please reduce the length of the ${what} or the completion.`,
      "context_length_exceeded",
    );
  return maxTokens;
}
