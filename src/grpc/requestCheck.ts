/**
 * Checks a Generate / GenerateStream request and turns it into engine jobs (one per prompt).
 * Every failure is INVALID_ARGUMENT naming the field (`prompts[2].token_ids`, `params.top_p`),
 * except an unknown model (NOT_FOUND). The limits match the HTTP API's where both have a field.
 */
import { status } from "@grpc/grpc-js";
import type { SamplingOptions } from "../engine/samplingOptions";
import { MAX_STOP_TOKEN_IDS } from "../engine/stop";
import { MAX_STOP_STRING_CHARS, MAX_STOP_STRINGS } from "../engine/stopStrings";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { TokenizerBusyError } from "../tokenizer/tokenizerPool";
import { readConstraint } from "./constraintWire";
import { GrpcError, invalidArgument } from "./status";
import type { WirePrompt, WireSamplingParams } from "./wire";

/** Most prompts one Generate call may carry. */
export const MAX_PROMPTS = 1024;
/** Most samples per prompt. */
export const MAX_N = 128;
/** max_new_tokens when the request leaves it 0 (less if the context has less room). */
export const DEFAULT_MAX_NEW_TOKENS = 128;
const MAX_LOGPROBS = 20;
const MAX_REQUEST_ID_LENGTH = 256;
/** Tokenized bad words: the HTTP API's 128 words with and without a leading space, each at most 256 characters. */
const MAX_BAD_WORD_LISTS = 256;
const MAX_BAD_WORD_IDS = 512;

/** What the checks need to know about the served model. */
export interface ModelLimits {
  modelName: string;
  maxModelLen: number;
  tokenizer: Tokenizer;
}

/** One prompt's engine request. */
export interface GenerateJob {
  promptIds: number[];
  sampling: SamplingOptions;
}

interface Range {
  min?: number;
  max?: number;
  minExclusive?: boolean;
  integer?: boolean;
}

function checkNumber(field: string, v: number, r: Range): number {
  if (!Number.isFinite(v)) throw invalidArgument(field, `must be a finite number, got ${v}`);
  if (r.integer && !Number.isInteger(v)) throw invalidArgument(field, `must be an integer, got ${v}`);
  const low = r.min !== undefined && (r.minExclusive ? v <= r.min : v < r.min);
  if (low || (r.max !== undefined && v > r.max)) {
    const lo = r.min === undefined ? "" : `${r.minExclusive ? ">" : ">="} ${r.min}`;
    const hi = r.max === undefined ? "" : `<= ${r.max}`;
    throw invalidArgument(field, `must be ${[lo, hi].filter(Boolean).join(" and ")}, got ${v}`);
  }
  return v;
}

const vocabMax = (t: Tokenizer) => t.vocabSize - 1;

/** The longest cache salt accepted (it is hashed into every prompt's first block). */
const MAX_CACHE_SALT_CHARS = 1024;

/** A cache salt: a non-empty string (as vLLM asks) of at most MAX_CACHE_SALT_CHARS. */
function checkSalt(field: string, salt: string): string {
  if (salt === "" || salt.length > MAX_CACHE_SALT_CHARS) throw invalidArgument(field, `must be a non-empty string of at most ${MAX_CACHE_SALT_CHARS} characters`);
  return salt;
}

const optional = (field: string, v: number | null | undefined, r: Range) => (v == null ? undefined : checkNumber(field, v, r));

/** Rejects any model name but the served one ("" means the served one). */
export function checkModel(model: string, served: string): void {
  if (model !== "" && model !== served) throw new GrpcError(status.NOT_FOUND, `model "${model}" is not served here (this server serves "${served}")`);
}

/** Rejects over-long client request ids. */
export function checkRequestId(id: string): void {
  if (id.length > MAX_REQUEST_ID_LENGTH) throw invalidArgument("request_id", `must be at most ${MAX_REQUEST_ID_LENGTH} characters`);
}

/**
 * A prompt's token ids (text is encoded with the model's special tokens, as MII does). Text that
 * cannot fit the context (see Tokenizer.maxCharsFor) is refused before it is tokenized, and long
 * text is tokenized off the serving thread.
 */
export async function readPrompt(field: string, p: WirePrompt | null | undefined, limits: ModelLimits): Promise<number[]> {
  const { tokenizer, maxModelLen } = limits;
  if (p?.kind === "text") {
    const text = p.text ?? "";
    const maxChars = tokenizer.maxCharsFor(maxModelLen);
    if (text.length > maxChars)
      throw invalidArgument(`${field}.text`, `is ${text.length} characters long: more than the model's context of ${maxModelLen} tokens can hold (at most ${maxChars} characters)`);
    let ids: number[];
    try {
      ids = await tokenizer.encodeAsync(text, { addSpecialTokens: true });
    } catch (e) {
      if (e instanceof TokenizerBusyError) throw new GrpcError(status.RESOURCE_EXHAUSTED, e.message);
      throw e;
    }
    if (ids.length === 0) throw invalidArgument(`${field}.text`, "is empty: it encodes to no tokens");
    return ids;
  }
  if (p?.kind === "token_ids") {
    const ids = p.token_ids?.ids ?? [];
    if (ids.length === 0) throw invalidArgument(`${field}.token_ids`, "must hold at least one token id");
    if (ids.length >= maxModelLen)
      throw invalidArgument(`${field}.token_ids`, `holds ${ids.length} ids, but the model's context is ${maxModelLen} tokens: shorten it`);
    ids.forEach((id, i) => checkNumber(`${field}.token_ids.ids[${i}]`, id, { integer: true, min: 0, max: vocabMax(tokenizer) }));
    return ids;
  }
  throw invalidArgument(field, "is required: set text or token_ids");
}

/** Sampling options shared by every prompt of a request; max tokens is settled per prompt. */
export function readSampling(p: WireSamplingParams | null | undefined, tokenizer: Tokenizer): Omit<SamplingOptions, "maxTokens"> & { maxTokens?: number } {
  if (!p) return { n: 1 };
  const f = (name: string) => `params.${name}`;
  const maxTokens = p.max_new_tokens === 0 ? undefined : p.max_new_tokens;
  if (maxTokens !== undefined && p.min_new_tokens > maxTokens)
    throw invalidArgument(f("min_new_tokens"), `(${p.min_new_tokens}) must not exceed max_new_tokens (${maxTokens})`);
  const n = p.n === 0 ? 1 : checkNumber(f("n"), p.n, { max: MAX_N });
  if (p.stop.length > MAX_STOP_STRINGS) throw invalidArgument(f("stop"), `may hold at most ${MAX_STOP_STRINGS} strings, got ${p.stop.length}`);
  if (p.stop.some((s) => s === "")) throw invalidArgument(f("stop"), "strings must not be empty");
  const long = p.stop.findIndex((s) => s.length > MAX_STOP_STRING_CHARS);
  if (long >= 0) throw invalidArgument(f(`stop[${long}]`), `is ${p.stop[long]!.length} characters long; stop strings may be at most ${MAX_STOP_STRING_CHARS}`);
  if (p.stop_token_ids.length > MAX_STOP_TOKEN_IDS)
    throw invalidArgument(f("stop_token_ids"), `may hold at most ${MAX_STOP_TOKEN_IDS} ids, got ${p.stop_token_ids.length}`);
  const maxId = vocabMax(tokenizer);
  p.stop_token_ids.forEach((id, i) => checkNumber(f(`stop_token_ids[${i}]`), id, { integer: true, min: 0, max: maxId }));
  const logitBias: Record<number, number> = {};
  for (const [key, bias] of Object.entries(p.logit_bias)) {
    const id = checkNumber(f("logit_bias key"), Number(key), { integer: true, min: 0, max: maxId });
    logitBias[id] = checkNumber(f(`logit_bias[${key}]`), bias, { min: -100, max: 100 });
  }
  const out = {
    ...readVllmExtras(p, maxId),
    maxTokens,
    minTokens: p.min_new_tokens,
    temperature: optional(f("temperature"), p.temperature, { min: 0 }),
    topP: optional(f("top_p"), p.top_p, { min: 0, minExclusive: true, max: 1 }),
    topK: optional(f("top_k"), p.top_k, { min: -1 }),
    minP: optional(f("min_p"), p.min_p, { min: 0, max: 1 }),
    seed: p.seed ?? undefined,
    stop: p.stop.length > 0 ? p.stop : undefined,
    stopTokenIds: p.stop_token_ids.length > 0 ? p.stop_token_ids : undefined,
    ignoreEos: p.ignore_eos,
    presencePenalty: checkNumber(f("presence_penalty"), p.presence_penalty, { min: -2, max: 2 }),
    frequencyPenalty: checkNumber(f("frequency_penalty"), p.frequency_penalty, { min: -2, max: 2 }),
    repetitionPenalty: optional(f("repetition_penalty"), p.repetition_penalty, { min: 0, minExclusive: true, max: 10 }),
    logprobs: checkNumber(f("logprobs"), p.logprobs, { max: MAX_LOGPROBS }),
    promptLogprobs: p.prompt_logprobs == null ? undefined : checkNumber(f("prompt_logprobs"), p.prompt_logprobs, { max: MAX_LOGPROBS }),
    logitBias: Object.keys(logitBias).length > 0 ? logitBias : undefined,
    cacheSalt: p.cache_salt == null ? undefined : checkSalt(f("cache_salt"), p.cache_salt),
    structured: readConstraint(p),
    n,
  };
  for (const k of Object.keys(out) as (keyof typeof out)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** include_stop_str_in_output, skip_special_tokens, bad_words and allowed_token_ids (unset ones left out). */
function readVllmExtras(p: WireSamplingParams, maxId: number): Pick<SamplingOptions, "includeStopStrInOutput" | "skipSpecialTokens" | "badWords" | "allowedTokenIds"> {
  const f = (name: string) => `params.${name}`;
  const ids = (field: string, list: number[]) => list.forEach((id, i) => checkNumber(`${field}[${i}]`, id, { integer: true, min: 0, max: maxId }));
  const words = p.bad_words ?? [];
  if (words.length > MAX_BAD_WORD_LISTS) throw invalidArgument(f("bad_words"), `may hold at most ${MAX_BAD_WORD_LISTS} token lists, got ${words.length}`);
  words.forEach((w, i) => {
    const field = f(`bad_words[${i}].ids`);
    if (w.ids.length === 0 || w.ids.length > MAX_BAD_WORD_IDS) throw invalidArgument(field, `must hold 1 to ${MAX_BAD_WORD_IDS} token ids, got ${w.ids.length}`);
    ids(field, w.ids);
  });
  const allowed = p.allowed_token_ids ?? [];
  ids(f("allowed_token_ids"), allowed);
  return {
    includeStopStrInOutput: p.include_stop_str_in_output || undefined,
    skipSpecialTokens: p.skip_special_tokens ?? undefined,
    badWords: words.length > 0 ? words.map((w) => w.ids) : undefined,
    allowedTokenIds: allowed.length > 0 ? allowed : undefined,
  };
}

/** Settles max tokens for one prompt: the request's, else the default; prompt + max must fit. */
export function settleMaxTokens(field: string, promptLen: number, requested: number | undefined, maxModelLen: number): number {
  if (promptLen >= maxModelLen)
    throw invalidArgument(field, `is ${promptLen} tokens, but the model's context is ${maxModelLen} tokens: shorten it`);
  const maxTokens = requested ?? Math.min(DEFAULT_MAX_NEW_TOKENS, maxModelLen - promptLen);
  if (promptLen + maxTokens > maxModelLen)
    throw invalidArgument(
      "params.max_new_tokens",
      `${promptLen} prompt tokens + ${maxTokens} new tokens exceed the model's context of ${maxModelLen} tokens`,
    );
  return maxTokens;
}

/** The engine jobs of a request's prompts (all checked before any starts). */
export async function readJobs(
  prompts: { field: string; prompt: WirePrompt | null | undefined }[],
  params: WireSamplingParams | null | undefined,
  limits: ModelLimits,
): Promise<GenerateJob[]> {
  if (prompts.length === 0) throw invalidArgument("prompts", "must hold at least one prompt");
  if (prompts.length > MAX_PROMPTS) throw invalidArgument("prompts", `may hold at most ${MAX_PROMPTS} prompts`);
  const { maxTokens, ...base } = readSampling(params, limits.tokenizer);
  // In parallel across the tokenizer's workers; a text too long to fit is refused before any wait.
  const ids = await Promise.all(prompts.map(({ field, prompt }) => readPrompt(field, prompt, limits)));
  return ids.map((promptIds, i) => {
    const field = prompts[i]!.field;
    return { promptIds, sampling: { ...base, maxTokens: settleMaxTokens(field, promptIds.length, maxTokens, limits.maxModelLen) } };
  });
}
