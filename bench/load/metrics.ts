/**
 * DeepSpeed-FastGen's benchmark metrics, from per-request token timestamps:
 *
 * - throughput-latency: requests/s of a point (completed / wall time) against its mean
 *   end-to-end latency;
 * - SLA: a request meets it when its first token arrives within prompt_tokens / 512 s and the
 *   exponential moving average (span 16, pandas' `ewm(span).mean()`, adjusted weights) of its
 *   inter-token latencies stays below 1 / rate for a rate of 2, 4 or 6 tokens/s, i.e. its
 *   smoothed token rate stays above the rate;
 * - effective throughput: the requests that met the SLA per second of the point
 *   (= requests/s x the share that met it when nothing failed);
 * - per-token generation latency: P50/P90/P95 of the gaps between consecutive tokens.
 */

/** One request as measured. Times are seconds. */
export interface RequestRecord {
  index: number;
  /** Which client (0..clients-1) sent it. */
  client: number;
  /** Prompt tokens the server counted (usage), else the tokens sent. */
  promptTokens: number;
  /** Prompt tokens served from the server's prefix cache (usage), when it says. */
  cachedTokens?: number;
  /** Tokens asked for (max_tokens). */
  genTokens: number;
  /** Tokens received. */
  tokensOut: number;
  /** When it was sent, since the point started. */
  startS: number;
  /** First token's arrival since it was sent; null when none came. */
  ttftS: number | null;
  /** Every output token's arrival since it was sent (tokenTimesS[0] = ttftS). */
  tokenTimesS: number[];
  /** Last byte since it was sent. */
  e2eS: number;
  error?: string;
}

/** The SLA of effective throughput. */
export interface SlaConfig {
  /** First token within prompt_tokens / this many seconds. */
  promptTokensPerS: number;
  /** Generation rates (tokens/s) the smoothed token rate must stay above, one curve each. */
  genTokensPerS: number[];
  /** Span of the exponential moving average of inter-token latencies. */
  emaSpan: number;
}

export const DEFAULT_SLA: SlaConfig = { promptTokensPerS: 512, genTokensPerS: [2, 4, 6], emaSpan: 16 };

/** Summary of one sweep point. */
export interface PointSummary {
  clients: number;
  requests: number;
  completed: number;
  failed: number;
  wallS: number;
  throughputRps: number;
  meanLatencyS: number;
  meanTtftS: number;
  p95TtftS?: number;
  /** Prompt tokens the server's prefix cache served / prompt tokens (when usage said). */
  prefixHitRate?: number;
  outputTokensPerS: number;
  /** Gaps between consecutive tokens of a request, all requests pooled. */
  tokenLatencyMs: { p50: number; p90: number; p95: number; mean: number };
  effective: { genTokensPerS: number; metShare: number; effectiveRps: number }[];
}

/** Gaps between consecutive arrival times. */
export function interTokenGaps(times: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < times.length; i++) out.push(times[i]! - times[i - 1]!);
  return out;
}

/** Exponential moving average with adjusted weights, alpha = 2 / (span + 1) (pandas ewm(span).mean()). */
export function emaAdjusted(xs: readonly number[], span: number): number[] {
  const decay = 1 - 2 / (span + 1);
  let num = 0;
  let den = 0;
  return xs.map((x) => {
    num = x + decay * num;
    den = 1 + decay * den;
    return num / den;
  });
}

/** Whether a request completed. */
export const completed = (r: RequestRecord): boolean => r.error === undefined && r.ttftS !== null;

/** Whether `r` met the SLA at generation rate `genTokensPerS`. */
export function meetsSla(r: RequestRecord, genTokensPerS: number, sla: SlaConfig = DEFAULT_SLA): boolean {
  if (!completed(r)) return false;
  if (r.ttftS! > r.promptTokens / sla.promptTokensPerS) return false;
  const limit = 1 / genTokensPerS;
  return emaAdjusted(interTokenGaps(r.tokenTimesS), sla.emaSpan).every((t) => t < limit);
}

/** Percentile with linear interpolation between order statistics (numpy's default); NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo);
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Summarizes one point: `wallS` is the time from the first send to the last response's end. */
export function summarizePoint(clients: number, records: readonly RequestRecord[], wallS: number, sla: SlaConfig = DEFAULT_SLA): PointSummary {
  const done = records.filter(completed);
  const gaps = done.flatMap((r) => interTokenGaps(r.tokenTimesS)).map((s) => s * 1000);
  const n = records.length;
  return {
    clients,
    requests: n,
    completed: done.length,
    failed: n - done.length,
    wallS,
    throughputRps: done.length / wallS,
    meanLatencyS: mean(done.map((r) => r.e2eS)),
    meanTtftS: mean(done.map((r) => r.ttftS!)),
    p95TtftS: percentile(done.map((r) => r.ttftS!), 95),
    ...(done.some((r) => r.cachedTokens !== undefined)
      ? { prefixHitRate: done.reduce((s, r) => s + (r.cachedTokens ?? 0), 0) / Math.max(1, done.reduce((s, r) => s + r.promptTokens, 0)) }
      : {}),
    outputTokensPerS: done.reduce((s, r) => s + r.tokensOut, 0) / wallS,
    tokenLatencyMs: { p50: percentile(gaps, 50), p90: percentile(gaps, 90), p95: percentile(gaps, 95), mean: mean(gaps) },
    effective: sla.genTokensPerS.map((rate) => {
      const met = records.filter((r) => meetsSla(r, rate, sla)).length;
      return { genTokensPerS: rate, metShare: n === 0 ? 0 : met / n, effectiveRps: met / wallS };
    }),
  };
}

/** Wall time of a point from its records: first send to last end. */
export function wallTimeOf(records: readonly RequestRecord[]): number {
  if (records.length === 0) return 0;
  const start = Math.min(...records.map((r) => r.startS));
  const end = Math.max(...records.map((r) => r.startS + r.e2eS));
  return end - start;
}
