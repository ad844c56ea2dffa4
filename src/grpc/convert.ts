/**
 * Engine types <-> wire messages: sampling options, deltas, logprobs, finish reasons and metrics.
 * Both ends use these (the server answering, RemoteEngine and the client reading), so a value
 * survives the round trip engine -> gRPC -> engine unchanged.
 */
import type { SamplingOptions } from "../engine/samplingOptions";
import { structuredToWire } from "./constraintWire";
import type { EngineMetrics, FinishReason, GenerationDelta, TokenLogprob } from "../engine/types";
import type {
  WireEngineMetrics, WireFinishReason, WireGenerateDelta, WireSamplingParams, WireStopReason, WireTokenLogprob,
} from "./wire";

const FINISH_TO_WIRE: Record<FinishReason, WireFinishReason> = {
  stop: "FINISH_REASON_STOP",
  length: "FINISH_REASON_LENGTH",
  abort: "FINISH_REASON_ABORT",
};

/** The wire enum of a finish reason (UNSPECIFIED for none). */
export function finishToWire(reason: FinishReason | undefined): WireFinishReason {
  return reason ? FINISH_TO_WIRE[reason] : "FINISH_REASON_UNSPECIFIED";
}

/** The finish reason of a wire enum (undefined for UNSPECIFIED). */
export function finishFromWire(reason: WireFinishReason | string | undefined): FinishReason | undefined {
  if (reason === "FINISH_REASON_STOP") return "stop";
  if (reason === "FINISH_REASON_LENGTH") return "length";
  if (reason === "FINISH_REASON_ABORT") return "abort";
  return undefined;
}

export function logprobToWire(lp: TokenLogprob): WireTokenLogprob {
  return { id: lp.id, logprob: lp.logprob, top_ids: lp.top.map((t) => t[0]), top_logprobs: lp.top.map((t) => t[1]) };
}

export function logprobFromWire(lp: WireTokenLogprob): TokenLogprob {
  return { id: lp.id, logprob: lp.logprob, top: lp.top_ids.map((id, i): [number, number] => [id, lp.top_logprobs[i] ?? -Infinity]) };
}

/** The oneof stop_reason fields for a stop string or stop token id. */
export function stopReasonToWire(reason: string | number | null | undefined): WireStopReason {
  if (typeof reason === "string") return { stop_string: reason };
  if (typeof reason === "number") return { stop_token_id: reason };
  return {};
}

export function stopReasonFromWire(m: WireStopReason): string | number | undefined {
  if (m.stop_reason === "stop_string") return m.stop_string ?? undefined;
  if (m.stop_reason === "stop_token_id") return m.stop_token_id ?? undefined;
  return undefined;
}

/** Usage carried on a sample's last delta. */
export interface DeltaUsage {
  promptLength: number;
  generatedLength: number;
}

export function deltaToWire(d: GenerationDelta, usage?: DeltaUsage): Partial<WireGenerateDelta> {
  const out: Partial<WireGenerateDelta> = { index: d.index, text: d.text, token_ids: d.tokenIds, finish_reason: finishToWire(d.finishReason) };
  if (d.logprobs) out.logprobs = d.logprobs.map(logprobToWire);
  if (d.promptLogprobs)
    out.prompt_logprobs = d.promptLogprobs.slice(1).map((lp) => logprobToWire(lp ?? { id: 0, logprob: Number.NaN, top: [] }));
  if (usage) Object.assign(out, { prompt_length: usage.promptLength, generated_length: usage.generatedLength });
  if (d.cachedTokens !== undefined) out.cached_tokens = d.cachedTokens;
  return Object.assign(out, stopReasonToWire(d.stopReason));
}

export function deltaFromWire(m: WireGenerateDelta): GenerationDelta {
  const d: GenerationDelta = { index: m.index, tokenIds: m.token_ids, text: m.text };
  if (m.logprobs.length > 0) d.logprobs = m.logprobs.map(logprobFromWire);
  if (m.prompt_logprobs && m.prompt_logprobs.length > 0) d.promptLogprobs = [null, ...m.prompt_logprobs.map(logprobFromWire)];
  const finish = finishFromWire(m.finish_reason);
  if (finish) d.finishReason = finish;
  const stop = stopReasonFromWire(m);
  if (stop !== undefined) d.stopReason = stop;
  // proto3 cannot tell 0 from unset: a sample's first delta always carries token ids or a finish.
  if (m.cached_tokens > 0) d.cachedTokens = m.cached_tokens;
  return d;
}

/** Sampling options as SamplingParams (what RemoteEngine sends a replica). */
export function samplingToWire(s: SamplingOptions): Partial<WireSamplingParams> {
  const bias: Record<string, number> = {};
  for (const [id, b] of Object.entries(s.logitBias ?? {})) bias[id] = b;
  return {
    max_new_tokens: s.maxTokens,
    min_new_tokens: s.minTokens ?? 0,
    temperature: s.temperature,
    top_p: s.topP,
    top_k: s.topK,
    min_p: s.minP,
    seed: s.seed,
    stop: s.stop ?? [],
    stop_token_ids: s.stopTokenIds ?? [],
    ignore_eos: s.ignoreEos ?? false,
    presence_penalty: s.presencePenalty ?? 0,
    frequency_penalty: s.frequencyPenalty ?? 0,
    repetition_penalty: s.repetitionPenalty,
    logprobs: s.logprobs ?? 0,
    n: s.n ?? 1,
    ...(s.promptLogprobs !== undefined && s.promptLogprobs >= 0 ? { prompt_logprobs: s.promptLogprobs } : {}),
    ...(s.cacheSalt !== undefined ? { cache_salt: s.cacheSalt } : {}),
    include_stop_str_in_output: s.includeStopStrInOutput ?? false,
    ...(s.skipSpecialTokens !== undefined ? { skip_special_tokens: s.skipSpecialTokens } : {}),
    bad_words: (s.badWords ?? []).map((ids) => ({ ids })),
    allowed_token_ids: s.allowedTokenIds ?? [],
    logit_bias: bias,
    // A front end sends the constraint it derived (response_format, tool_choice, ...), not its tools.
    ...(s.structured ? { structured_output: structuredToWire(s.structured) } : {}),
  };
}

export function metricsToWire(m: EngineMetrics): WireEngineMetrics {
  return {
    queue_time_seconds: m.queueTimeSeconds ?? null,
    iteration_tokens: m.iterationTokens ?? null,
    kv_blocks_total: m.kvBlocksTotal,
    kv_blocks_free: m.kvBlocksFree,
    prompt_tokens_total: m.promptTokensTotal,
    generation_tokens_total: m.generationTokensTotal,
    requests_finished_total: m.requestsFinishedTotal,
    preemptions_total: m.preemptionsTotal,
    steps_total: m.stepsTotal,
    prefix_cache_queries_total: m.prefixCacheQueriesTotal ?? 0,
    prefix_cache_hits_total: m.prefixCacheHitsTotal ?? 0,
    spec_decode: m.specDecode
      ? {
          num_drafts: m.specDecode.numDrafts,
          num_draft_tokens: m.specDecode.numDraftTokens,
          num_accepted_tokens: m.specDecode.numAcceptedTokens,
          accepted_per_pos: m.specDecode.acceptedPerPos,
          governor_probes: m.specDecode.governorProbes,
          governor_flips: m.specDecode.governorFlips,
          off_by_batch: m.specDecode.offByBatch,
        }
      : null,
    grammar: m.grammar
      ? {
          compiles: m.grammar.compiles,
          compile_seconds: m.grammar.compileSeconds,
          cache_hits: m.grammar.cacheHits,
          compile_timeouts: m.grammar.compileTimeouts,
          masks_computed: m.grammar.masksComputed,
          mask_wait_seconds: m.grammar.maskWaitSeconds,
          worker_restarts: m.grammar.workerRestarts,
        }
      : null,
  };
}

/** Engine metrics from a Health reply (its queue lengths and its counters). */
export function metricsFromWire(waiting: number, running: number, m: WireEngineMetrics | null | undefined): EngineMetrics {
  const out: EngineMetrics = {
    requestsWaiting: waiting,
    requestsRunning: running,
    kvBlocksTotal: m?.kv_blocks_total ?? 0,
    kvBlocksFree: m?.kv_blocks_free ?? 0,
    promptTokensTotal: m?.prompt_tokens_total ?? 0,
    generationTokensTotal: m?.generation_tokens_total ?? 0,
    requestsFinishedTotal: m?.requests_finished_total ?? 0,
    preemptionsTotal: m?.preemptions_total ?? 0,
    stepsTotal: m?.steps_total ?? 0,
    prefixCacheQueriesTotal: Number(m?.prefix_cache_queries_total ?? 0),
    prefixCacheHitsTotal: Number(m?.prefix_cache_hits_total ?? 0),
  };
  if (m?.queue_time_seconds) out.queueTimeSeconds = m.queue_time_seconds;
  if (m?.iteration_tokens) out.iterationTokens = m.iteration_tokens;
  const s = m?.spec_decode;
  if (s) {
    out.specDecode = {
      numDrafts: Number(s.num_drafts),
      numDraftTokens: Number(s.num_draft_tokens),
      numAcceptedTokens: Number(s.num_accepted_tokens),
      acceptedPerPos: (s.accepted_per_pos ?? []).map(Number),
      governorProbes: Number(s.governor_probes ?? 0),
      governorFlips: Number(s.governor_flips ?? 0),
      offByBatch: (s.off_by_batch ?? []).map(Number),
    };
  }
  const g = m?.grammar;
  if (g) {
    out.grammar = {
      compiles: Number(g.compiles),
      compileSeconds: Number(g.compile_seconds),
      cacheHits: Number(g.cache_hits),
      compileTimeouts: Number(g.compile_timeouts),
      masksComputed: Number(g.masks_computed),
      maskWaitSeconds: Number(g.mask_wait_seconds),
      workerRestarts: Number(g.worker_restarts),
    };
  }
  return out;
}
