/**
 * What a front end over replicas shows beyond EngineClient: the state of each replica. The gRPC
 * Health RPC reports it; tests and the replica benchmark read it.
 */
import type { EngineClient } from "./types";

/** One replica as the load balancer sees it. */
export interface ReplicaStatus {
  /** host:port (or a name for an in-process replica). */
  address: string;
  healthy: boolean;
  /** Queued + running tokens of its requests in flight (what routing minimizes). */
  outstandingTokens: number;
  requestsInFlight: number;
  /** Requests sent to it since the front end started (retries included). */
  requestsRouted: number;
  /** Why it is out, while it is. */
  lastError: string | null;
}

/** An engine that spreads requests over replicas. */
export interface ReplicatedEngine extends EngineClient {
  replicaStatus(): ReplicaStatus[];
}

/** True for engines that report replicas (the load balancer). */
export function isReplicated(engine: EngineClient): engine is ReplicatedEngine {
  return typeof (engine as Partial<ReplicatedEngine>).replicaStatus === "function";
}
