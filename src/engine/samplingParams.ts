/**
 * SamplingParams: a request's SamplingOptions checked once and normalized into the shape the
 * batch builder copies every step (bigint seed, logit bias as parallel typed arrays).
 */
import type { SamplingOptions } from "./samplingOptions";

/** Normalized per-sequence sampling and stopping parameters. */
export interface SamplingParams {
  /** 0 = greedy. */
  readonly temperature: number;
  /** 1 = off. */
  readonly topP: number;
  /** <= 0 = off. */
  readonly topK: number;
  /** 0 = off. */
  readonly minP: number;
  /** The device draw depends only on (seed, position), so a recomputed sequence samples the same. */
  readonly seed: bigint;
  /** The seed's low and high 32 bits: the batch writes these (a bigint store costs ~30 ns). */
  readonly seedLow: number;
  readonly seedHigh: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  /** 1 = off; applies to prompt + output ids (HF semantics). */
  readonly repetitionPenalty: number;
  /** Logit bias as parallel arrays (empty = none). */
  readonly logitBiasIds: Int32Array;
  readonly logitBiasValues: Float32Array;
  /**
   * A logit bias or bad words: each of its sampled rows carries a bias list. The batch asks
   * this of every row each step; the two lists are objects of their own, so one flag here is
   * one cache line less per row.
   */
  readonly hasBiasList: boolean;
  /** Top-k logprobs per sampled token (0 = none). */
  readonly logprobs: number;
  /** Prompt logprobs: -1 = none; k >= 0 = each prompt token's logprob plus its top k. */
  readonly promptLogprobs: number;
  readonly returnLogits: boolean;
  readonly maxTokens: number;
  readonly minTokens: number;
  readonly ignoreEos: boolean;
  readonly stopTokenIds: readonly number[];
  /** Stop strings: checked by the detokenizer hook, not here. */
  readonly stop: readonly string[];
  /** Keep the stop string/token that ended the text in it (default: dropped, as in vLLM). */
  readonly includeStopStrInOutput: boolean;
  readonly skipSpecialTokens: boolean;
  /** Banned token sequences (see badWords.ts); empty = none. */
  readonly badWords: readonly (readonly number[])[];
  /**
   * The only ids it may sample (allowedTokens.ts), or null for any. The caller's list itself, not a
   * copy: the n samples of a request share it, so they share one mask.
   */
  readonly allowedTokenIds: readonly number[] | null;
  /** Prefix-cache salt: an extra key of the first block's hash ("" = none). */
  readonly cacheSalt: string;
}

/** A request asked for something out of range (the server answers 400). */
export class SamplingParamsError extends Error {
  override name = "SamplingParamsError";
}

/** Options as callers give them, plus the engine-internal `returnLogits`. */
export type SamplingInput = SamplingOptions & { returnLogits?: boolean };

/** Temperatures below this sample greedily (vLLM's epsilon): 1/T would overflow float32 logits. */
const GREEDY_BELOW = 1e-5;

function check(ok: boolean, message: string): void {
  if (!ok) throw new SamplingParamsError(message);
}

function randomSeed(): bigint {
  const a = new BigUint64Array(1);
  crypto.getRandomValues(a);
  return a[0]!;
}

/** Validates `opts` and fills defaults. A missing seed is drawn once here, per sequence. */
export function samplingParams(opts: SamplingInput): SamplingParams {
  const asked = opts.temperature ?? 1;
  const temperature = asked < GREEDY_BELOW && asked >= 0 ? 0 : asked;
  const topP = opts.topP ?? 1;
  const topK = opts.topK ?? 0;
  const minP = opts.minP ?? 0;
  const maxTokens = opts.maxTokens;
  const minTokens = opts.minTokens ?? 0;
  const logprobs = opts.logprobs ?? 0;
  const promptLogprobs = opts.promptLogprobs ?? -1;
  check(Number.isInteger(promptLogprobs) && promptLogprobs >= -1 && promptLogprobs <= 20, "prompt_logprobs must be an integer in [0, 20]");
  const repetitionPenalty = opts.repetitionPenalty ?? 1;
  const presencePenalty = opts.presencePenalty ?? 0;
  const frequencyPenalty = opts.frequencyPenalty ?? 0;
  check(Number.isFinite(temperature) && temperature >= 0, "temperature must be >= 0");
  // The pass carries float32: a value that rounds to 0 there would fail the whole pass.
  check(Math.fround(topP) > 0 && topP <= 1, "top_p must be in (0, 1] (and at least 1e-38)");
  check(Number.isInteger(topK), "top_k must be an integer");
  check(minP >= 0 && minP <= 1, "min_p must be in [0, 1]");
  check(Number.isInteger(maxTokens) && maxTokens >= 1, "max_tokens must be an integer >= 1");
  check(Number.isInteger(minTokens) && minTokens >= 0 && minTokens <= maxTokens, "min_tokens must be in [0, max_tokens]");
  check(Number.isInteger(logprobs) && logprobs >= 0 && logprobs <= 20, "logprobs must be an integer in [0, 20]");
  check(Math.fround(repetitionPenalty) > 0 && Number.isFinite(repetitionPenalty), "repetition_penalty must be > 0 (and at least 1e-38)");
  check(Math.abs(presencePenalty) <= 2, "presence_penalty must be in [-2, 2]");
  check(Math.abs(frequencyPenalty) <= 2, "frequency_penalty must be in [-2, 2]");
  check(opts.cacheSalt === undefined || typeof opts.cacheSalt === "string", "cache_salt must be a string");
  const bias = Object.entries(opts.logitBias ?? {});
  const logitBiasIds = new Int32Array(bias.length);
  const logitBiasValues = new Float32Array(bias.length);
  bias.forEach(([id, value], i) => {
    const tokenId = Number(id);
    check(Number.isInteger(tokenId) && tokenId >= 0, `logit_bias key ${id} is not a token id`);
    check(Number.isFinite(value) && Math.abs(value) <= 100, "logit_bias values must be in [-100, 100]");
    logitBiasIds[i] = tokenId;
    logitBiasValues[i] = value;
  });
  const badWords = opts.badWords ?? [];
  check(badWords.every((w) => w.length > 0 && w.every((id) => Number.isInteger(id) && id >= 0)), "bad_words must be non-empty lists of token ids");
  const allowed = opts.allowedTokenIds;
  check(allowed === undefined || (allowed.length > 0 && allowed.every((id) => Number.isInteger(id) && id >= 0)), "allowed_token_ids must be a non-empty list of token ids");
  const seed = opts.seed === undefined ? randomSeed() : BigInt.asUintN(64, BigInt(Math.trunc(opts.seed)));
  return {
    temperature, topP, topK, minP, seed, seedLow: Number(seed & 0xffffffffn), seedHigh: Number(seed >> 32n),
    presencePenalty, frequencyPenalty, repetitionPenalty,
    logitBiasIds, logitBiasValues, hasBiasList: bias.length > 0 || badWords.length > 0, logprobs, promptLogprobs, returnLogits: opts.returnLogits ?? false,
    maxTokens, minTokens, ignoreEos: opts.ignoreEos ?? false,
    stopTokenIds: [...(opts.stopTokenIds ?? [])], stop: [...(opts.stop ?? [])],
    includeStopStrInOutput: opts.includeStopStrInOutput ?? false, skipSpecialTokens: opts.skipSpecialTokens ?? true,
    badWords: badWords.map((w) => [...w]),
    allowedTokenIds: allowed ?? null,
    cacheSalt: opts.cacheSalt ?? "",
  };
}

/** True when the pass must carry this sequence's penalty ids. */
export function usesPenalties(p: SamplingParams): boolean {
  return p.presencePenalty !== 0 || p.frequencyPenalty !== 0 || p.repetitionPenalty !== 1;
}
