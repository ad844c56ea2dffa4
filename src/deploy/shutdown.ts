/**
 * Graceful shutdown of `fastgen serve` on SIGTERM or SIGINT:
 *
 *   1. stop accepting: the listeners close, /health answers 503, new generation requests on open
 *      connections get 503 (shutting_down)
 *   2. in-flight requests finish, for up to --shutdown-timeout seconds; past it their
 *      generations are stopped (they end with finish_reason "abort") and connections close
 *   3. the engine shuts down (its Worker frees the device and the KV cache; replicas are stopped)
 *
 * A second signal while draining cuts the open connections at once.
 */
import type { EngineClient } from "../engine/types";
import type { DrainResult } from "../server/serverTypes";
import type { Logger } from "../ops/logger";

/** Default --shutdown-timeout, in seconds. */
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 30;

/** What is shut down, in order. */
export interface ShutdownTargets {
  http: { readonly openRequests: number; drain(timeoutMs: number): Promise<DrainResult>; stop(): Promise<void> };
  grpc: { stop(graceMs?: number): Promise<void> };
  engine: Pick<EngineClient, "shutdown">;
  logger: Logger;
  /** How long in-flight requests may take to finish. */
  timeoutMs: number;
}

/** Drains the servers, then shuts the engine down; resolves once everything stopped. */
export async function shutDown(t: ShutdownTargets, reason: string): Promise<void> {
  t.logger.info(`${reason}, shutting down`, { open_requests: t.http.openRequests, deadline_s: t.timeoutMs / 1000 });
  const [drained] = await Promise.all([t.http.drain(t.timeoutMs), t.grpc.stop(t.timeoutMs)]);
  if (drained.stopped > 0 || drained.cut > 0)
    t.logger.warn("requests still running at the shutdown deadline were stopped", { stopped: drained.stopped, cut: drained.cut });
  await t.engine.shutdown();
  t.logger.info("stopped", { drained_requests: drained.open });
}

/** Waits for SIGTERM or SIGINT, then shuts down; resolves once stopped. */
export function shutDownOnSignal(t: ShutdownTargets): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        t.logger.warn(`${signal} again: closing open connections now`);
        void t.http.stop();
        return;
      }
      stopping = true;
      shutDown(t, signal)
        .then(resolve, reject)
        .finally(() => {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
