/**
 * The delay before restarting a process that died: doubles from `initialMs` to `maxMs` while it
 * keeps dying, and starts over once it had run for `healthyMs` (then it was no crash loop).
 * Shared by the replica supervisor (lb/replicaProcess.ts) and the engine child's (supervisedEngine.ts).
 */

/** Options of {@link RestartBackoff}. */
export interface RestartBackoffOptions {
  initialMs?: number;
  maxMs?: number;
  healthyMs?: number;
}

export class RestartBackoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly healthyMs: number;
  private nextMs: number;

  constructor(options: RestartBackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 10_000;
    this.healthyMs = options.healthyMs ?? 60_000;
    this.nextMs = this.initialMs;
  }

  /** The delay before the next restart of a process that ran for `ranMs` before dying. */
  next(ranMs: number): number {
    if (ranMs > this.healthyMs) this.nextMs = this.initialMs;
    const delay = this.nextMs;
    this.nextMs = Math.min(this.nextMs * 2, this.maxMs);
    return delay;
  }
}
