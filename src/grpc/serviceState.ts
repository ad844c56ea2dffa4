/**
 * What every gRPC handler shares: the engine, the served model's limits, the API key check, the
 * requests in flight by client request id (for Abort) and their outstanding work (for Health).
 */
import { timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { EngineClient } from "../engine/types";
import { OutstandingWork } from "../lb/outstandingWork";
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
  ) {
    this.modelName = servedModelName;
    this.maxModelLen = engine.maxModelLen;
    this.tokenizer = engine.tokenizer;
    this.apiKey = apiKey ? Buffer.from(apiKey) : null;
  }

  /** With an API key, UNAUTHENTICATED unless the call's metadata has `authorization: Bearer <key>`. */
  authorize(metadata: Metadata): void {
    if (!this.apiKey) return;
    const header = metadata.get("authorization")[0];
    const m = typeof header === "string" ? header.match(/^Bearer\s+(.+)$/i) : null;
    const given = m ? Buffer.from(m[1]!.trim()) : null;
    if (!given || given.length !== this.apiKey.length || !timingSafeEqual(given, this.apiKey))
      throw new GrpcError(status.UNAUTHENTICATED, "invalid or missing API key: send metadata 'authorization: Bearer <key>'");
  }
}
