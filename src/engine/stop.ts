/**
 * Stop conditions on token ids: a pure function of the sequence after its new token was
 * appended. Stop strings need the detokenizer; the engine passes them in as a StopStringHook.
 */
import type { Sequence } from "./sequence";

/**
 * Most stop token ids per request. Each is compared against every new token of every sample, so
 * an unbounded list (an 8 MiB body holds ~1.5M ids) would stall the engine loop; real lists hold
 * a model's few end-of-turn ids.
 */
export const MAX_STOP_TOKEN_IDS = 1024;

/** Engine-wide stop settings (per-request ones live in SamplingParams). */
export interface StopConfig {
  /** The model's end-of-sequence ids (generation_config may list several). */
  readonly eosTokenIds: readonly number[];
  /** Prompt + output may not reach past this; undefined = no limit. */
  readonly maxModelLen?: number;
}

/** Why a sequence stops. */
export interface StopDecision {
  readonly finishReason: "stop" | "length";
  /** The stop token id or stop string that matched; null for EOS and length. */
  readonly stopReason: number | string | null;
}

/**
 * Called for each new token once min_tokens is reached and no id rule fired; returns the stop
 * string the sequence's text now contains, or null. Wired by the engine to the detokenizer.
 */
export type StopStringHook = (seq: Sequence, tokenId: number) => string | null;

/** Whether `seq` stops now that `tokenId` (its last output) was appended. */
export function checkStop(seq: Sequence, tokenId: number, config: StopConfig, hook?: StopStringHook): StopDecision | null {
  const p = seq.params;
  const n = seq.numOutputTokens;
  if (n >= p.minTokens) {
    if (!p.ignoreEos && config.eosTokenIds.includes(tokenId)) return { finishReason: "stop", stopReason: null };
    // Most requests have no stop ids, and includes() on an empty list is still a native call.
    if (p.stopTokenIds.length > 0 && p.stopTokenIds.includes(tokenId)) return { finishReason: "stop", stopReason: tokenId };
    const stopString = hook?.(seq, tokenId) ?? null;
    if (stopString !== null) return { finishReason: "stop", stopReason: stopString };
  }
  if (n >= p.maxTokens) return { finishReason: "length", stopReason: null };
  if (config.maxModelLen !== undefined && seq.numTokens >= config.maxModelLen) return { finishReason: "length", stopReason: null };
  return null;
}

/**
 * Token ids that may not be sampled yet: below min_tokens, EOS (unless ignore_eos) and the
 * stop token ids are banned, as vLLM does, so the batch gives them a -inf logit bias.
 */
export function bannedStopIds(seq: Sequence, eosTokenIds: readonly number[]): readonly number[] {
  const p = seq.params;
  // minTokens first: it is 0 for most requests, and the outputs are an object of their own.
  if (p.minTokens === 0 || seq.numOutputTokens >= p.minTokens) return NONE;
  if (p.ignoreEos || eosTokenIds.length === 0) return p.stopTokenIds;
  return p.stopTokenIds.length === 0 ? eosTokenIds : [...eosTokenIds, ...p.stopTokenIds];
}

const NONE: readonly number[] = [];
