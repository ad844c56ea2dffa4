/**
 * Whether the engine behind the server is alive, for GET /health (200 or 503) and for refusing
 * generation requests once it is gone. EngineClient has no liveness call, so the server learns it
 * three ways: an engine that offers `healthy()` is asked (a SupervisedEngine is unhealthy while
 * its child restarts, and healthy again after); engine.metrics() throwing means dead; and
 * generate() failing with the errors of a crashed or shut-down engine Worker flips a flag that
 * stays flipped (a dead Worker does not come back; a restarting child fails with
 * EngineCrashedError instead, which does not flip it).
 */
import type { EngineClient, EngineMetrics } from "../engine/types";
import { ApiError } from "./errors";

/** The messages AsyncEngine fails requests with once its Worker is gone. */
const ENGINE_GONE = /^engine (worker crashed|shut down|is shut down|failed)\b/;

/** Whether `e` says the engine itself is gone (rather than one request failing). */
export function isEngineGone(e: unknown): boolean {
  return e instanceof Error && ENGINE_GONE.test(e.message);
}

/** 503 for requests that reach a dead engine. */
export function engineUnavailable(reason: string): ApiError {
  return new ApiError(503, `The engine is not running (${reason}).`, "server_error", null, "engine_unavailable");
}

/** An engine that may report its own liveness, and why not (optional: EngineClient does not require it). */
type MaybeHealthy = EngineClient & { healthy?: () => boolean; unhealthyReason?: () => string | null };

export class EngineHealth {
  private deadReason: string | null = null;

  constructor(private readonly engine: MaybeHealthy) {}

  /** Records that the engine is gone; later checks fail with `reason`. */
  markDead(reason: string): void {
    this.deadReason ??= reason;
  }

  /** null when the engine is alive, else why it is not. */
  problem(): string | null {
    if (this.metrics() === null) return this.deadReason;
    if (this.engine.healthy && !this.engine.healthy()) return this.engine.unhealthyReason?.() ?? "the engine reports itself unhealthy";
    return null;
  }

  /** The engine's metrics, or null once it is known dead or when they cannot be read. */
  metrics(): EngineMetrics | null {
    if (this.deadReason !== null) return null;
    try {
      return this.engine.metrics();
    } catch (e) {
      this.markDead(`engine metrics failed: ${(e as Error).message}`);
      return null;
    }
  }

  /** Throws a 503 when the engine is not alive. */
  assertAlive(): void {
    const problem = this.problem();
    if (problem !== null) throw engineUnavailable(problem);
  }
}
