/**
 * Cumulative histograms the engine keeps (queue time, tokens per forward pass) and ships to the
 * serving thread as plain snapshots, which the /metrics endpoint renders.
 */

/** A histogram's state: counts[i] = observations <= bounds[i] (cumulative, Prometheus style). */
export interface HistogramSnapshot {
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}

export class EngineHistogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = this.bounds.length - 1; i >= 0 && v <= this.bounds[i]!; i--) this.counts[i]!++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

/** Seconds a request waited before its first forward pass. */
export const QUEUE_TIME_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Tokens in one forward pass (vLLM's iteration_tokens_total buckets). */
export const ITERATION_TOKENS_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];
