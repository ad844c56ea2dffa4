/**
 * What every gRPC handler shares: the engine, the served model's limits, the API key check, the
 * admission gate (--max-queue), the requests in flight by client request id (for Abort) and
 * their outstanding work (for Health).
 */
import { timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { EngineClient } from "../engine/types";
import { EngineOverloadedError } from "../engine/types";
import { OutstandingWork } from "../engine/outstandingWork";
import type { Tokenizer } from "../tokenizer/tokenizer";
import type { ModelLimits } from "./requestCheck";
import { GrpcError } from "./status";

/** Generate calls in flight, by the request_id their client gave ("" = none: not abortable by id). */
export class RequestRegistry {
  private readonly byId = new Map<string, AbortController>();
  private readonly all = new Set<AbortController>();

  /** Lists a call; the returned function unlists it. ALREADY_EXISTS when the id is taken. */
  register(requestId: string, controller: AbortController): () => void {
    if (requestId !== "" && this.byId.has(requestId))
      throw new GrpcError(status.ALREADY_EXISTS, `request_id "${requestId}" is already in flight`);
    if (requestId !== "") this.byId.set(requestId, controller);
    this.all.add(controller);
    return () => {
      this.all.delete(controller);
      if (this.byId.get(requestId) === controller) this.byId.delete(requestId);
    };
  }

  /** Aborts the call with this id; false when none is in flight. */
  abort(requestId: string): boolean {
    const controller = this.byId.get(requestId);
    controller?.abort();
    return controller !== undefined;
  }

  /** Aborts every call (server shutdown). */
  abortAll(): void {
    for (const c of this.all) c.abort();
  }
}

/**
 * The cap on generation requests held at once (--max-queue) and the count against it. `fastgen
 * serve` hands in the HTTP server's context (a ServerContext has this shape), so HTTP requests and
 * gRPC calls count in one counter against one limit; a gRPC server alone gets its own.
 */
export interface AdmissionGate {
  /** Generation requests held at once before more are refused (Infinity: no limit). */
  readonly maxQueue: number;
  readonly metrics: { inFlight: number };
}

export class GrpcServiceState implements ModelLimits {
  readonly requests = new RequestRegistry();
  readonly work = new OutstandingWork();
  readonly modelName: string;
  readonly maxModelLen: number;
  readonly tokenizer: Tokenizer;
  /** Set once the server is stopping: Health answers serving = false. */
  stopping = false;
  private readonly apiKey: Buffer | null;

  constructor(
    readonly engine: EngineClient,
    /** The name clients send in `model` (the engine's unless overridden). */
    readonly servedModelName: string,
    apiKey?: string,
    readonly gate: AdmissionGate = { maxQueue: Infinity, metrics: { inFlight: 0 } },
  ) {
    this.modelName = servedModelName;
    this.maxModelLen = engine.maxModelLen;
    this.tokenizer = engine.tokenizer;
    this.apiKey = apiKey ? Buffer.from(apiKey) : null;
  }

  /** With an API key, UNAUTHENTICATED unless the call's metadata has `authorization: Bearer <key>`. */
  authorize(metadata: Metadata): void {
    if (!this.authorized(metadata))
      throw new GrpcError(status.UNAUTHENTICATED, "invalid or missing API key: send metadata 'authorization: Bearer <key>'");
  }

  /** True without an API key, or when the call's metadata carries it. */
  authorized(metadata: Metadata): boolean {
    if (!this.apiKey) return true;
    const header = metadata.get("authorization")[0];
    const m = typeof header === "string" ? header.match(/^Bearer\s+(.+)$/i) : null;
    const given = m ? Buffer.from(m[1]!.trim()) : null;
    return given !== null && given.length === this.apiKey.length && timingSafeEqual(given, this.apiKey);
  }

  /**
   * Counts a Generate call in the gate until the returned release runs (idempotent). Past the cap
   * it throws EngineOverloadedError: RESOURCE_EXHAUSTED, as HTTP answers 503. Not UNAVAILABLE: a
   * front end reads that as a replica gone and takes it out of rotation, while RESOURCE_EXHAUSTED
   * makes it try another replica, and a busy server is up, not down.
   */
  admit(): () => void {
    const gate = this.gate;
    if (gate.metrics.inFlight >= gate.maxQueue) throw new EngineOverloadedError(`${gate.metrics.inFlight} requests in flight`);
    gate.metrics.inFlight++;
    let held = true;
    return () => {
      if (held) gate.metrics.inFlight--;
      held = false;
    };
  }
}
