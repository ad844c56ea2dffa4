/**
 * Server metrics in the Prometheus text format (version 0.0.4): request counts by endpoint and
 * status, prompt/generation tokens, TTFT and end-to-end latency histograms, plus the engine's
 * queue, running and KV gauges read from engine.metrics() at scrape time.
 */
import type { EngineMetrics } from "../engine/types";

/** Time-to-first-token buckets in seconds (upper bounds; +Inf is implied). */
export const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** End-to-end latency buckets in seconds. */
export const E2E_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** A cumulative histogram. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly bounds: number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) this.counts[i]!++;
  }

  /** The _bucket, _sum and _count lines of `name`. */
  render(name: string): string[] {
    const lines = this.bounds.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`);
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines;
  }
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** The server's counters; one instance per server. */
export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  promptTokens = 0;
  generationTokens = 0;
  /** Generation requests this server is handling now (queued in the engine or running). */
  inFlight = 0;
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly e2e = new Histogram(E2E_BUCKETS);

  /** Counts one finished HTTP request. */
  countRequest(endpoint: string, status: number): void {
    const key = `${endpoint}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** The whole exposition, engine gauges included. */
  render(model: string, engine: EngineMetrics): string {
    const m = `model_name="${escapeLabel(model)}"`;
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    const one = (name: string, type: string, help: string, value: number) =>
      metric(name, type, help, [`${name}{${m}} ${value}`]);

    const reqLines = [...this.requests].map(([key, count]) => {
      const [endpoint, status] = key.split("\u0000");
      return `fastgen_http_requests_total{endpoint="${escapeLabel(endpoint!)}",status="${status}"} ${count}`;
    });
    metric("fastgen_http_requests_total", "counter", "HTTP requests answered, by endpoint and status.", reqLines);
    one("fastgen_prompt_tokens_total", "counter", "Prompt tokens of generation requests accepted by the server.", this.promptTokens);
    one("fastgen_generation_tokens_total", "counter", "Tokens generated for this server's requests.", this.generationTokens);
    one("fastgen_requests_in_flight", "gauge", "Generation requests this server is handling.", this.inFlight);
    one("fastgen_requests_waiting", "gauge", "Requests waiting in the engine queue.", engine.requestsWaiting);
    one("fastgen_requests_running", "gauge", "Requests the engine is running.", engine.requestsRunning);
    one("fastgen_kv_blocks_total", "gauge", "KV cache blocks in the pool.", engine.kvBlocksTotal);
    one("fastgen_kv_blocks_free", "gauge", "Free KV cache blocks.", engine.kvBlocksFree);
    const usage = engine.kvBlocksTotal > 0 ? 1 - engine.kvBlocksFree / engine.kvBlocksTotal : 0;
    one("fastgen_kv_cache_usage_ratio", "gauge", "Share of KV cache blocks in use (0..1).", usage);
    one("fastgen_engine_prompt_tokens_total", "counter", "Prompt tokens the engine has processed.", engine.promptTokensTotal);
    one("fastgen_engine_generation_tokens_total", "counter", "Tokens the engine has generated.", engine.generationTokensTotal);
    one("fastgen_engine_requests_finished_total", "counter", "Requests the engine has finished.", engine.requestsFinishedTotal);
    one("fastgen_engine_preemptions_total", "counter", "Sequences preempted for lack of KV blocks.", engine.preemptionsTotal);
    one("fastgen_engine_steps_total", "counter", "Forward passes the engine has run.", engine.stepsTotal);
    metric("fastgen_time_to_first_token_seconds", "histogram", "Time from request arrival to its first token.", this.ttft.render("fastgen_time_to_first_token_seconds"));
    metric("fastgen_e2e_request_latency_seconds", "histogram", "Time from request arrival to its last token.", this.e2e.render("fastgen_e2e_request_latency_seconds"));
    return out.join("\n") + "\n";
  }
}
