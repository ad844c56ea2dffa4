/**
 * /metrics in the Prometheus text format, with vLLM's metric names under a `fastgen:` prefix
 * (dashboards built for vLLM work after renaming the prefix), every sample labelled model_name:
 *
 *   engine (read at scrape time)          num_requests_running, num_requests_waiting,
 *                                         kv_cache_usage_perc, kv_cache_blocks_{total,free},
 *                                         prompt_tokens_total, generation_tokens_total,
 *                                         num_preemptions_total, request_queue_time_seconds,
 *                                         iteration_tokens_total (tokens per forward pass),
 *                                         spec_decode_* (when on), grammar_* (structured outputs:
 *                                         vLLM has no equal, so plain names; writeGrammar)
 *   this server (RequestObserver)         time_to_first_token_seconds, inter_token_latency_seconds,
 *                                         e2e_request_latency_seconds,
 *                                         request_success_total{finished_reason},
 *                                         requests_in_flight, http_requests_total{endpoint,status}
 */
import type { HistogramSnapshot } from "../engine/histogram";
import { EngineHistogram, ITERATION_TOKENS_BUCKETS, QUEUE_TIME_BUCKETS } from "../engine/histogram";
import type { EngineMetrics, FinishReason, GenerationDelta } from "../engine/types";
import type { SpecDecodeStats } from "../engine/speculative/speculator";
import type { GrammarMetrics } from "../grammar/grammarMetrics";
import { PrometheusWriter } from "./prometheus";
import type { RequestTrace } from "./requestTrace";

/** Time-to-first-token buckets in seconds (upper bounds; +Inf is implied). */
export const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Inter-token latency buckets in seconds (vLLM's, with finer ones for small models). */
export const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10];
/** End-to-end latency buckets in seconds. */
export const E2E_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

const FINISH_REASONS: FinishReason[] = ["stop", "length", "abort"];
const empty = (bounds: number[]): HistogramSnapshot => ({ bounds, counts: bounds.map(() => 0), sum: 0, count: 0 });

/** The server's own counters and histograms; one instance per server. */
export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  private readonly finished = new Map<FinishReason, number>(FINISH_REASONS.map((r) => [r, 0]));
  /** Generation requests this server is handling now (queued in the engine or running). */
  inFlight = 0;
  readonly ttft = new EngineHistogram(TTFT_BUCKETS);
  readonly itl = new EngineHistogram(ITL_BUCKETS);
  readonly e2e = new EngineHistogram(E2E_BUCKETS);

  /** Counts one answered HTTP request. */
  countRequest(endpoint: string, status: number): void {
    const key = `${endpoint}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Counts one finished choice (engine sample). */
  countFinished(reason: FinishReason): void {
    this.finished.set(reason, (this.finished.get(reason) ?? 0) + 1);
  }

  /** The whole exposition; `engine` is null when the engine could not be read. */
  render(model: string, engine: EngineMetrics | null): string {
    const w = new PrometheusWriter();
    const m = { model_name: model };
    const gauge = (name: string, help: string, v: number) => w.scalar(`fastgen:${name}`, "gauge", help, [[m, v]]);
    const counter = (name: string, help: string, v: number) => w.scalar(`fastgen:${name}`, "counter", help, [[m, v]]);
    if (engine) {
      gauge("num_requests_running", "Requests in the engine's running batch.", engine.requestsRunning);
      gauge("num_requests_waiting", "Requests waiting in the engine queue.", engine.requestsWaiting);
      const usage = engine.kvBlocksTotal > 0 ? 1 - engine.kvBlocksFree / engine.kvBlocksTotal : 0;
      gauge("kv_cache_usage_perc", "KV-cache usage: share of blocks in use, 1 means 100 percent.", usage);
      gauge("kv_cache_blocks_total", "KV-cache blocks in the pool.", engine.kvBlocksTotal);
      gauge("kv_cache_blocks_free", "Free KV-cache blocks.", engine.kvBlocksFree);
      counter("prompt_tokens_total", "Prompt tokens the engine was given.", engine.promptTokensTotal);
      counter("generation_tokens_total", "Tokens the engine generated.", engine.generationTokensTotal);
      counter("num_preemptions_total", "Sequences preempted (recomputed later) for lack of KV blocks.", engine.preemptionsTotal);
      // vLLM's names: prompt tokens looked up in the prefix cache at admission, and tokens found.
      counter("prefix_cache_queries_total", "Prefix cache queries: prompt tokens looked up at admission.", engine.prefixCacheQueriesTotal ?? 0);
      counter("prefix_cache_hits_total", "Prefix cache hits: prompt tokens found in the cache.", engine.prefixCacheHitsTotal ?? 0);
      if (engine.specDecode) writeSpecDecode(w, m, engine.specDecode);
      if (engine.grammar) writeGrammar(w, m, engine.grammar);
      w.histogram("fastgen:request_queue_time_seconds", "Seconds from arrival in the engine to the first forward pass.", m,
        engine.queueTimeSeconds ?? empty(QUEUE_TIME_BUCKETS));
      w.histogram("fastgen:iteration_tokens_total", "Tokens per forward pass.", m, engine.iterationTokens ?? empty(ITERATION_TOKENS_BUCKETS));
    }
    w.scalar("fastgen:request_success_total", "counter", "Finished choices (engine samples) by finish reason.",
      [...this.finished].map(([reason, n]) => [{ ...m, finished_reason: reason }, n]));
    gauge("requests_in_flight", "Generation requests this server is handling.", this.inFlight);
    w.histogram("fastgen:time_to_first_token_seconds", "Seconds from HTTP request arrival to its first token.", m, this.ttft.snapshot());
    w.histogram("fastgen:inter_token_latency_seconds", "Seconds between successive tokens of a choice.", m, this.itl.snapshot());
    w.histogram("fastgen:e2e_request_latency_seconds", "Seconds from HTTP request arrival to its last token.", m, this.e2e.snapshot());
    w.scalar("fastgen:http_requests_total", "counter", "HTTP requests answered, by endpoint and status.",
      [...this.requests].map(([key, n]) => {
        const [endpoint, status] = key.split("\u0000") as [string, string];
        return [{ ...m, endpoint, status }, n];
      }));
    return w.text();
  }
}

/**
 * Times one HTTP request's choices: TTFT at its first token, inter-token gaps per choice, the
 * finish reason of each choice, end-to-end latency once every choice finished. It also fills the
 * request's trace (tokens, first token, finish reasons) for the access log.
 */
export class RequestObserver {
  private sawToken = false;
  private ended = false;
  /** performance.now() of each choice's latest token; -1 before its first. */
  private readonly lastTokenAt: number[];
  private readonly done: boolean[];

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly trace: RequestTrace,
    choices: number,
  ) {
    this.lastTokenAt = new Array<number>(choices).fill(-1);
    this.done = new Array<boolean>(choices).fill(false);
  }

  delta(choice: number, delta: GenerationDelta, now = performance.now()): void {
    const k = delta.tokenIds.length;
    if (k > 0) {
      if (!this.sawToken) {
        this.metrics.ttft.observe((now - this.trace.startedAt) / 1000);
        this.trace.firstTokenAt = now;
      }
      this.sawToken = true;
      this.trace.completionTokens += k;
      const last = this.lastTokenAt[choice] ?? -1;
      // Tokens that arrive together (one message, several passes) share the gap evenly.
      if (last >= 0) for (let i = 0; i < k; i++) this.metrics.itl.observe((now - last) / 1000 / k);
      this.lastTokenAt[choice] = now;
    }
    if (delta.finishReason && this.done[choice] === false) {
      this.done[choice] = true;
      this.trace.finishReasons[choice] = delta.finishReason;
      this.metrics.countFinished(delta.finishReason);
    }
  }

  /** The request is over (once): choices that never finished count as aborted. */
  end(now = performance.now()): void {
    if (this.ended) return;
    this.ended = true;
    const unfinished = this.done.filter((d) => !d).length;
    for (let i = 0; i < unfinished; i++) this.metrics.countFinished("abort");
    if (unfinished === 0) this.metrics.e2e.observe((now - this.trace.startedAt) / 1000);
    this.trace.generationEnded();
  }
}

/** vLLM's spec-decode counters (fastgen:spec_decode_*), plus the acceptance rate as a gauge. */
function writeSpecDecode(w: PrometheusWriter, m: { model_name: string }, s: SpecDecodeStats): void {
  const c = (name: string, help: string, v: number) => w.scalar(`fastgen:spec_decode_${name}`, "counter", help, [[m, v]]);
  c("num_drafts_total", "Drafts verified: one per sequence per pass that carried proposed tokens.", s.numDrafts);
  c("num_draft_tokens_total", "Proposed tokens verified.", s.numDraftTokens);
  c("num_accepted_tokens_total", "Proposed tokens accepted.", s.numAcceptedTokens);
  w.scalar("fastgen:spec_decode_num_accepted_tokens_per_pos_total", "counter", "Drafts whose token at this position was accepted.",
    s.acceptedPerPos.map((n, pos) => [{ ...m, position: String(pos) }, n]));
  w.scalar("fastgen:spec_decode_acceptance_rate", "gauge", "Accepted / proposed tokens since start.",
    [[m, s.numDraftTokens > 0 ? s.numAcceptedTokens / s.numDraftTokens : 0]]);
  c("governor_probes_total", "Probes of the speculation governor: a few passes run the other way (drafts on or off) to time them.", s.governorProbes);
  c("governor_flips_total", "Probes after which the governor switched speculation on or off for a batch size.", s.governorFlips);
  w.scalar("fastgen:spec_decode_off", "gauge", "Engines whose governor has turned speculation off for passes of up to max_batch decodes (it times them and found drafting slower).",
    s.offByBatch.map((n, i) => [{ ...m, max_batch: String(2 ** i) }, n]));
}

/** Structured outputs' counters (fastgen:grammar_*): the grammar Workers' compiles and masks. */
function writeGrammar(w: PrometheusWriter, m: { model_name: string }, g: GrammarMetrics): void {
  const c = (name: string, help: string, v: number) => w.scalar(`fastgen:grammar_${name}`, "counter", help, [[m, v]]);
  c("compiles_total", "Structured-output grammars compiled (once per grammar Worker that needed one).", g.compiles);
  c("compile_seconds_total", "Seconds spent compiling grammars, summed (in the grammar Workers).", g.compileSeconds);
  c("cache_hits_total", "Structured-output requests served by a grammar Worker's compiled-grammar cache.", g.cacheHits);
  c("compile_timeouts_total", "Grammar compiles ended at --grammar-compile-timeout (each ended its Worker).", g.compileTimeouts);
  c("masks_computed_total", "Next-token masks XGrammar computed (the engine's mask cache served the rest).", g.masksComputed);
  c("mask_wait_seconds_total", "Seconds forward passes waited on the engine thread for their masks, summed.", g.maskWaitSeconds);
  c("worker_restarts_total", "Grammar Workers started to replace a failed one (crash, mask or compile timeout).", g.workerRestarts);
}
