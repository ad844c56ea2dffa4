/**
 * One replica as the load balancer keeps it: its engine, whether it takes work, the outstanding
 * work this front end has sent it (plus what its last health probe said others sent it), and the
 * requests running on it, so that a replica which stops answering can fail them at once.
 */
import type { EngineClient, GenerateRequest, GenerationDelta } from "../engine/types";
import type { ReplicaHealth } from "../grpc/remoteEngine";
import { ReplicaUnavailableError } from "../engine/replicaErrors";
import { OutstandingWork } from "../engine/outstandingWork";
import type { ReplicaStatus } from "../engine/replicated";
import type { RpcStream } from "../grpc/rpcClient";
import type { WireKvEventBatch } from "../grpc/kvEventsWire";
import { KvBlockIndex } from "../engine/kvCache/kvBlockIndex";

/** An engine the balancer can route to and probe (RemoteEngine, or a test double). */
export interface ProbedEngine extends EngineClient {
  readonly address: string;
  probe(timeoutMs: number): Promise<ReplicaHealth>;
  /** `onAccepted` runs once the replica has taken the request (see grpc/acceptSignal.ts). */
  generate(request: GenerateRequest, signal?: AbortSignal, onAccepted?: () => void): AsyncGenerator<GenerationDelta>;
  /** The replica's KV events stream (cache-aware routing); absent: it is routed on load alone. */
  kvEvents?(): RpcStream<WireKvEventBatch>;
}

/** A request the replica has accepted and not finished: a suspect if the replica dies. */
export interface HeldRequest {
  /** requestFingerprint() of the request. */
  fingerprint: string;
  /** Already counted for a crash of this replica (siblings fail one by one). */
  blamed: boolean;
}

export class Replica {
  /** Work this front end has in flight on the replica. */
  readonly work = new OutstandingWork();
  /** Takes new requests (set by health probes and by failed requests). */
  healthy = false;
  /** Why it is out, while it is. */
  lastError: string | null = null;
  /** Probes failed in a row. */
  failedProbes = 0;
  /** Requests sent to it (retries included). */
  routed = 0;
  /** Tokens the replica reported beyond this front end's own (other front ends share it). */
  private externalTokens = 0;
  /** Abort controllers of the requests running on it. */
  private readonly running = new Set<AbortController>();
  /** Requests it has accepted and not finished (the suspects if it dies). */
  readonly held = new Set<HeldRequest>();
  /** The block hashes its prefix cache holds, as its KV events told (kvEventSubscriber.ts). */
  readonly cache = new KvBlockIndex();

  constructor(readonly engine: ProbedEngine) {}

  get address(): string {
    return this.engine.address;
  }

  /** Queued + running tokens: what least-outstanding routing compares. */
  get load(): number {
    return this.work.tokens + this.externalTokens;
  }

  /** Takes a probe's answer (the caller has checked it serves the right model). */
  noteHealth(health: ReplicaHealth): void {
    this.externalTokens = Math.max(0, health.outstandingTokens - this.work.tokens);
    this.failedProbes = 0;
  }

  /** Lists a running request; the returned function unlists it. */
  track(controller: AbortController): () => void {
    this.running.add(controller);
    return () => this.running.delete(controller);
  }

  /** Fails every running request (the replica stopped answering); they see ReplicaUnavailableError. */
  abortRunning(reason: string): number {
    const err = new ReplicaUnavailableError(this.address, reason);
    for (const c of this.running) c.abort(err);
    return this.running.size;
  }

  status(): ReplicaStatus {
    return {
      address: this.address,
      healthy: this.healthy,
      outstandingTokens: this.load,
      requestsInFlight: this.work.requests,
      requestsRouted: this.routed,
      lastError: this.lastError,
    };
  }
}
