/**
 * The sampling fields /v1/completions and /v1/chat/completions share, checked and mapped onto the
 * engine's SamplingOptions. Logprobs differ between the two endpoints and are read by each.
 */
import type { SamplingBase } from "../engine/samplingOptions";

export type { SamplingBase };
import { MAX_STOP_TOKEN_IDS } from "../engine/stop";
import { MAX_STOP_STRING_CHARS, MAX_STOP_STRINGS } from "../engine/stopStrings";
import { invalidParam, unsupportedParam } from "./errors";
import type { RequestParams } from "./requestParams";
import { checkNumber } from "./requestParams";
import { withSamplingDefaults } from "./samplingDefaults";
import type { ServerContext } from "./serverContext";
import { readVllmSampling } from "./vllmParams";
import { readStructuredOutput } from "./structuredOutputs";

/** Most samples one request may ask for. */
export const MAX_N = 128;
export { MAX_STOP_STRINGS };


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

function readMaxTokens(p: RequestParams, allowZero: boolean): number | undefined {
  const min = allowZero ? 0 : 1;
  const legacy = p.integer("max_tokens", { min });
  const modern = p.integer("max_completion_tokens", { min });
  if (legacy !== undefined && modern !== undefined && legacy !== modern)
    throw invalidParam("max_completion_tokens", "'max_tokens' and 'max_completion_tokens' disagree: give only one.");
  return modern ?? legacy;
}

function readLogitBias(p: RequestParams, vocabSize: number): Record<number, number> | undefined {
  const raw = p.object("logit_bias");
  if (raw === undefined) return undefined;
  const out: Record<number, number> = {};
  for (const [key, bias] of Object.entries(raw)) {
    const id = Number(key);
    if (!/^\d+$/.test(key) || id >= vocabSize)
      throw invalidParam("logit_bias", `'logit_bias' keys must be token ids in [0, ${vocabSize}), got "${key}".`);
    out[id] = checkNumber(`logit_bias.${key}`, bias, { min: -100, max: 100 });
  }
  return out;
}

/** `stop`: up to 4 non-empty strings (OpenAI's limit), each of at most MAX_STOP_STRING_CHARS characters. */
function readStop(p: RequestParams): string[] | undefined {
  const stop = p.stringList("stop");
  if (stop === undefined) return undefined;
  if (stop.length > MAX_STOP_STRINGS) throw invalidParam("stop", `'stop' may hold at most ${MAX_STOP_STRINGS} strings, got ${stop.length}.`);
  if (stop.some((s) => s === "")) throw invalidParam("stop", "'stop' strings must not be empty.");
  const long = stop.findIndex((s) => s.length > MAX_STOP_STRING_CHARS);
  if (long >= 0)
    throw invalidParam("stop", `'stop[${long}]' is ${stop[long]!.length} characters long; stop strings may be at most ${MAX_STOP_STRING_CHARS}.`);
  return stop;
}

/** The longest cache salt accepted (it is hashed into every prompt's first block). */
const MAX_CACHE_SALT_CHARS = 1024;

/** cache_salt (vLLM): a non-empty string; requests share prefix-cache blocks only with equal salts. */
function readCacheSalt(p: RequestParams): string | undefined {
  const salt = p.string("cache_salt");
  if (salt !== undefined && (salt === "" || salt.length > MAX_CACHE_SALT_CHARS))
    throw invalidParam("cache_salt", `'cache_salt' must be a non-empty string of at most ${MAX_CACHE_SALT_CHARS} characters.`);
  return salt;
}

/**
 * Reads the shared sampling fields (and best_of, which must equal n, and vLLM's extras); fields
 * left unset take the model's generation_config defaults (samplingDefaults.ts).
 * `allowZeroMaxTokens`: max_tokens 0 is prompt scoring (completions with echo).
 */
export function readSamplingParams(
  p: RequestParams,
  ctx: Pick<ServerContext, "tokenizer" | "samplingDefaults">,
  allowZeroMaxTokens = false,
): ParsedSampling {
  const vocabSize = ctx.tokenizer.vocabSize;
  const maxTokensCap = ctx.samplingDefaults.maxTokens ?? Infinity;
  const asked = readMaxTokens(p, allowZeroMaxTokens);
  const maxTokens = asked === undefined ? undefined : Math.min(asked, maxTokensCap);
  const minTokens = p.integer("min_tokens", { min: 0 });
  if (minTokens !== undefined && maxTokens !== undefined && minTokens > maxTokens)
    throw invalidParam("min_tokens", `'min_tokens' (${minTokens}) must not exceed max tokens (${maxTokens}).`);
  const n = p.integer("n", { min: 1, max: MAX_N }) ?? 1;
  const bestOf = p.integer("best_of", { min: 1 });
  if (bestOf !== undefined && bestOf !== n)
    throw unsupportedParam("best_of", `Only best_of equal to n (${n}) is supported, got ${bestOf}.`);
  const stop = readStop(p);
  const stopTokenIds = p.integerList("stop_token_ids", { min: 0, max: vocabSize - 1 });
  if (stopTokenIds !== undefined && stopTokenIds.length > MAX_STOP_TOKEN_IDS)
    throw invalidParam("stop_token_ids", `'stop_token_ids' may hold at most ${MAX_STOP_TOKEN_IDS} ids, got ${stopTokenIds.length}.`);
  const sampling: SamplingBase = {
    minTokens,
    temperature: p.number("temperature", { min: 0, max: 2 }),
    topP: p.number("top_p", { min: 0, minExclusive: true, max: 1 }),
    topK: p.integer("top_k", { min: -1 }),
    minP: p.number("min_p", { min: 0, max: 1 }),
    seed: p.integer("seed", { min: 0 }),
    ignoreEos: p.boolean("ignore_eos"),
    stopTokenIds,
    stop: stop && stop.length > 0 ? stop : undefined,
    presencePenalty: p.number("presence_penalty", { min: -2, max: 2 }),
    frequencyPenalty: p.number("frequency_penalty", { min: -2, max: 2 }),
    repetitionPenalty: p.number("repetition_penalty", { min: 0, minExclusive: true, max: 2 }),
    logitBias: readLogitBias(p, vocabSize),
    cacheSalt: readCacheSalt(p),
    n,
    structured: readStructuredOutput(p),
    ...readVllmSampling(p, ctx.tokenizer),
  };
  p.string("user"); // accepted for compatibility; it only tags the request on OpenAI's side
  for (const k of Object.keys(sampling) as (keyof SamplingBase)[]) if (sampling[k] === undefined) delete sampling[k];
  return { sampling: withSamplingDefaults(sampling, ctx.samplingDefaults), maxTokens, maxTokensCap, n };
}

/** Reads stream and stream_options (include_usage, vLLM's continuous_usage_stats; other keys are ignored). */
export function readStreamParams(p: RequestParams): StreamParams {
  const stream = p.boolean("stream") ?? false;
  const options = p.object("stream_options");
  if (options === undefined) return { stream, includeUsage: false, continuousUsage: false };
  if (!stream) throw invalidParam("stream_options", "'stream_options' is only allowed when 'stream' is true.");
  const flag = (key: string): boolean => {
    const v = options[key];
    if (v !== undefined && v !== null && typeof v !== "boolean")
      throw invalidParam(`stream_options.${key}`, `'stream_options.${key}' must be a boolean.`);
    return v === true;
  };
  return { stream, includeUsage: flag("include_usage"), continuousUsage: flag("continuous_usage_stats") };
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
