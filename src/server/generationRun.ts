/**
 * Runs one HTTP request's prompts on the engine (one engine request per prompt, each with n
 * samples) and merges their deltas into one stream of choices. The first delta of every prompt is
 * awaited before anything is answered, so an overloaded or rejected request still gets its status.
 * Aborting the caller's signal (client gone), a client that stops reading (streamBuffer.ts) or
 * leaving the loop aborts every engine request.
 */
import type { SamplingOptions } from "../engine/samplingOptions";
import type { FinishReason, GenerationDelta, TokenLogprob } from "../engine/types";
import { EngineOverloadedError, EngineStepError, RequestRejectedError } from "../engine/types";
import { EngineCrashedError, RequestQuarantinedError } from "../engine/engineErrors";
import { ReplicaFailedError } from "../engine/replicaErrors";
import { errorFields } from "../ops/logger";
import { ApiError, engineCrashed, internalError, overloaded, requestQuarantined } from "./errors";
import type { EngineHealth } from "./health";
import { engineUnavailable, isEngineGone } from "./health";
import { RequestObserver } from "./metrics";
import type { RequestTrace } from "./requestTrace";
import type { ServerContext } from "./serverContext";
import { StreamBuffer, StreamStalledError, deltaBytes } from "./streamBuffer";

/** One engine request of an HTTP request. */
export interface PromptJob {
  promptIds: number[];
  sampling: SamplingOptions;
}

/** A delta of choice `choice` (prompt index * n + sample index). */
export interface ChoiceDelta {
  choice: number;
  delta: GenerationDelta;
}

type Step = { job: number; result?: IteratorResult<GenerationDelta>; error?: unknown };

/**
 * A started generation: iterate `deltas` once. `abort()` ends it now (client gone); `stop()` asks
 * the engine to stop its requests and lets their closing deltas (finish_reason "abort") through.
 */
export interface GenerationRun {
  deltas: AsyncIterable<ChoiceDelta>;
  abort(): void;
  stop(): void;
}

/**
 * The engine's refusals as API errors: 503 for a full queue or a dead engine (which is also
 * recorded in `health`), 400 for a request it cannot run, 503 when its replica or engine process
 * died under it, 422 for one refused by the poison quarantine, 500 naming the failure for a
 * forward pass that failed under it.
 */
function toApiError(e: unknown, health: EngineHealth): unknown {
  if (e instanceof EngineOverloadedError) return overloaded(`The server is overloaded: ${e.message}. Retry later.`);
  if (e instanceof RequestRejectedError)
    return new ApiError(400, `The engine rejected the request: ${e.message}`, "invalid_request_error", null, "request_rejected");
  if (e instanceof ReplicaFailedError) return new ApiError(503, e.message, "server_error", null, "replica_failed", { "retry-after": "1" });
  if (e instanceof EngineCrashedError) return engineCrashed(e.message, e.retryAfterSeconds);
  if (e instanceof RequestQuarantinedError) return requestQuarantined(e.message);
  if (e instanceof EngineStepError)
    return new ApiError(500, `The engine failed while running this request (${e.message}); retrying may succeed.`, "server_error", null, "engine_error");
  if (isEngineGone(e)) {
    health.markDead((e as Error).message);
    return engineUnavailable((e as Error).message);
  }
  return e;
}

/**
 * Starts every job and waits for each one's first delta; throws what the engine threw (as an
 * ApiError where it has one) after aborting the others. 503 when the server already holds
 * ctx.maxQueue generation requests. The run ends with the trace's client going away.
 */
export async function startGeneration(ctx: ServerContext, responseId: string, jobs: PromptJob[], trace: RequestTrace): Promise<GenerationRun> {
  const { engine, metrics, health } = ctx;
  const signal = trace.signal;
  health.assertAlive();
  if (metrics.inFlight >= ctx.maxQueue) throw overloaded(`The server is overloaded: ${metrics.inFlight} requests in flight. Retry later.`);
  metrics.inFlight++;
  let released = false;
  const release = () => {
    if (!released) metrics.inFlight--;
    released = true;
  };
  const engineAbort = new AbortController(); // aborts the engine requests
  let over = false;
  let wake!: (v: "aborted") => void;
  const aborted = new Promise<"aborted">((resolve) => (wake = resolve));
  let observer: RequestObserver | null = null; // set once every job has started
  const abort = () => {
    over = true;
    engineAbort.abort();
    wake("aborted");
    release();
    observer?.end();
  };
  const clientGone = () => {
    trace.clientGone = true;
    abort();
  };
  if (signal.aborted) clientGone();
  else signal.addEventListener("abort", clientGone, { once: true });
  trace.stopGeneration = () => engineAbort.abort();

  const iterators: AsyncIterator<GenerationDelta>[] = [];
  const next = (job: number): Promise<Step> =>
    iterators[job]!.next().then(
      (result) => ({ job, result }),
      (error) => ({ job, error }),
    );
  let firsts: Step[];
  try {
    for (let j = 0; j < jobs.length; j++) {
      const id = jobs.length === 1 ? responseId : `${responseId}-${j}`;
      const firstSample = j * (jobs[j]!.sampling.n ?? 1); // fair share: the prompts of one request take turns
      iterators.push(engine.generate({ requestId: id, ...jobs[j]!, firstSample }, engineAbort.signal)[Symbol.asyncIterator]());
    }
    firsts = await Promise.all(iterators.map((_, j) => next(j)));
  } catch (e) {
    firsts = [{ job: 0, error: e }];
  }
  const failed = firsts.find((s) => s.error !== undefined);
  if (failed) {
    abort();
    trace.stopGeneration = null;
    for (const it of iterators) void it.return?.()?.catch(() => {});
    signal.removeEventListener("abort", clientGone);
    throw toApiError(failed.error, health);
  }
  const n = jobs[0]?.sampling.n ?? 1;
  trace.generationStarted(jobs.reduce((s, j) => s + j.promptIds.length, 0), jobs.length * n);
  const seen = new RequestObserver(metrics, trace, jobs.length * n);
  observer = seen;
  if (over) seen.end(); // the client left while the first deltas were on their way

  // The engine's deltas are pumped into a bounded buffer as they come; the response takes them as
  // its client reads. A client that stops reading aborts the run (streamBuffer.ts) and frees its KV.
  const buffer = new StreamBuffer<ChoiceDelta>(ctx.streamLimits, (e) => {
    trace.clientGone = true;
    trace.errorType = e.type;
    trace.errorCode = e.code ?? undefined;
    ctx.logger.warn("stream aborted: the client stopped reading", { request_id: trace.id, response_id: trace.responseId, reason: e.message });
    abort();
  });
  const pending = new Map<number, Promise<Step>>(firsts.map((s) => [s.job, Promise.resolve(s)]));
  async function pump(): Promise<void> {
    while (pending.size > 0) {
      const step = await Promise.race([...pending.values(), aborted]);
      if (step === "aborted") {
        // A stalled client may never read again: close the engine streams now, not on its last read.
        for (const job of pending.keys()) void iterators[job]!.return?.()?.catch(() => {});
        return buffer.end();
      }
      if (step.error !== undefined) return buffer.fail(toApiError(step.error, health));
      if (step.result!.done) {
        pending.delete(step.job);
        continue;
      }
      pending.set(step.job, next(step.job));
      const delta = step.result!.value;
      const choice = step.job * n + delta.index;
      seen.delta(choice, delta);
      buffer.push({ choice, delta }, deltaBytes(delta));
    }
    buffer.end();
  }
  const pumped = pump().catch((e) => buffer.fail(e));

  async function* merge(): AsyncGenerator<ChoiceDelta> {
    try {
      for (;;) {
        const { done, value } = await buffer.take();
        if (done) return;
        yield value;
      }
    } finally {
      buffer.close();
      signal.removeEventListener("abort", clientGone);
      if (pending.size > 0) abort();
      await pumped;
      release();
      seen.end();
      for (const job of pending.keys()) void iterators[job]!.return?.()?.catch(() => {});
    }
  }
  return { deltas: merge(), abort, stop: () => engineAbort.abort() };
}

/**
 * A failure after a stream began (its 200 is out; the client gets an error event): logged, and
 * noted in the trace for the access log.
 */
export function streamFailed(ctx: ServerContext, trace: RequestTrace, e: unknown): void {
  const err = e instanceof ApiError ? e : internalError();
  trace.errorType = err.type;
  trace.errorCode = err.code ?? undefined;
  if (e instanceof StreamStalledError) return; // logged when it stalled
  ctx.logger.error("generation failed mid-stream", { request_id: trace.id, response_id: trace.responseId, ...errorFields(e) });
}

/** Everything one choice produced, for non-streamed responses. */
export interface ChoiceResult {
  text: string;
  tokenCount: number;
  logprobs: TokenLogprob[];
  /** The engine's prompt logprobs, when they were asked for (echo + logprobs). */
  promptLogprobs?: (TokenLogprob | null)[];
  finishReason: FinishReason | null;
  stopReason: string | number | null;
  /** Prompt tokens found in the prefix cache (from the sample's first delta). */
  cachedTokens: number;
}

/** Runs `run` to the end and gathers its `count` choices. */
export async function collectChoices(run: GenerationRun, count: number): Promise<ChoiceResult[]> {
  const out = Array.from({ length: count }, (): ChoiceResult => ({ text: "", tokenCount: 0, logprobs: [], finishReason: null, stopReason: null, cachedTokens: 0 }));
  for await (const { choice, delta } of run.deltas) {
    const c = out[choice];
    if (!c) continue;
    c.text += delta.text;
    c.tokenCount += delta.tokenIds.length;
    if (delta.logprobs) c.logprobs.push(...delta.logprobs);
    if (delta.promptLogprobs) c.promptLogprobs = delta.promptLogprobs;
    if (delta.finishReason) c.finishReason = delta.finishReason;
    if (delta.stopReason !== undefined) c.stopReason = delta.stopReason;
    if (delta.cachedTokens !== undefined) c.cachedTokens = delta.cachedTokens;
  }
  return out;
}

/**
 * Prompt tokens served from the prefix cache, over the prompts of a request: each prompt counts
 * once, as its first sample found it (`choice` is prompt index * n + sample index).
 */
export function cachedPromptTokens(cachedTokens: readonly number[], n: number): number {
  let sum = 0;
  for (let i = 0; i < cachedTokens.length; i += n) sum += cachedTokens[i]!;
  return sum;
}

/** OpenAI's usage object. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** cached_tokens: prompt tokens whose KV came from the prefix cache. */
  prompt_tokens_details: { cached_tokens: number };
}

/** Usage from token counts (prompts counted once, however many samples each has). */
export function usage(promptTokens: number, completionTokens: number, cachedTokens = 0): Usage {
  return {
    prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

/**
 * The usage field of a streamed chunk: absent without include_usage, null with it (the totals come
 * in a last chunk), the counts so far with vLLM's continuous_usage_stats too.
 */
export function chunkUsage(
  stream: { includeUsage: boolean; continuousUsage: boolean },
  promptTokens: number,
  completionTokens: number,
  cachedTokens = 0,
): { usage?: Usage | null } {
  if (!stream.includeUsage) return {};
  return { usage: stream.continuousUsage ? usage(promptTokens, completionTokens, cachedTokens) : null };
}
