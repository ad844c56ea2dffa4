/**
 * Health checks: every interval each replica is asked for Health (with a deadline). An answer
 * from a replica serving the expected model brings it in (a restarted replica rejoins this way);
 * no answer, `serving: false` or another model takes it out. After `evictAfter` failed probes in a
 * row its running requests are failed too: a replica that hangs must not hang its clients.
 */
import type { Replica } from "./replica";

/** Options of {@link HealthChecker}. */
export interface HealthCheckOptions {
  /** The model every replica must serve, and the front end's context length (none may be smaller). */
  modelName: string;
  maxModelLen: number;
  /** Milliseconds between probes of one replica (default 1000). */
  intervalMs?: number;
  /** Deadline of one probe (default 2000). */
  timeoutMs?: number;
  /** Failed probes in a row before running requests are failed (default 3). */
  evictAfter?: number;
  /** Where up/down transitions are told (default console.error). */
  log?: (message: string) => void;
}

export class HealthChecker {
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly probing = new Set<Replica>();
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly evictAfter: number;
  private readonly log: (message: string) => void;

  constructor(
    private readonly replicas: readonly Replica[],
    private readonly options: HealthCheckOptions,
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.evictAfter = options.evictAfter ?? 3;
    this.log = options.log ?? ((m) => console.error(`fastgen: ${m}`));
  }

  /** Probes every replica once (those with a probe in flight are skipped). */
  async checkAll(): Promise<void> {
    await Promise.all(this.replicas.map((r) => this.check(r)));
  }

  private async check(replica: Replica): Promise<void> {
    if (this.probing.has(replica)) return;
    this.probing.add(replica);
    try {
      const health = await replica.engine.probe(this.timeoutMs);
      const { modelName, maxModelLen } = this.options;
      if (health.modelName !== modelName) return this.markDown(replica, `it serves model "${health.modelName}", not "${modelName}"`);
      if (health.maxModelLen < maxModelLen) return this.markDown(replica, `its context (${health.maxModelLen} tokens) is below the front end's ${maxModelLen}`);
      if (!health.serving) return this.markDown(replica, "it is not serving (shutting down?)");
      replica.noteHealth(health);
      this.markUp(replica);
    } catch (e) {
      replica.failedProbes++;
      this.markDown(replica, (e as Error).message);
      if (replica.failedProbes === this.evictAfter) {
        const failed = replica.abortRunning(`no answer to ${this.evictAfter} health checks`);
        if (failed > 0) this.log(`replica ${replica.address}: failed its ${failed} running requests`);
      }
    } finally {
      this.probing.delete(replica);
    }
  }

  private markUp(replica: Replica): void {
    if (!replica.healthy) this.log(`replica ${replica.address} is ${replica.lastError ? "back" : "up"}`);
    replica.healthy = true;
    replica.lastError = null;
  }

  /** Takes a replica out of routing until a probe brings it back. */
  markDown(replica: Replica, reason: string): void {
    if (replica.healthy || replica.lastError === null) this.log(`replica ${replica.address} is out: ${reason}`);
    replica.healthy = false;
    replica.lastError = reason;
  }

  /** Probes every `intervalMs` until stop(). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.checkAll(), this.intervalMs);
    this.timer.unref?.(); // probes alone never keep the process alive
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
