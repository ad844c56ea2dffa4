/**
 * FastGen's gRPC server (@grpc/grpc-js, messages through protobufjs: see proto.ts) over any
 * EngineClient: the in-process engine, a replica's engine, or the load balancer of a front end.
 *   Generate, GenerateStream   generateHandlers.ts
 *   ListModels                 the served model and its context length
 *   Health                     queue lengths, outstanding tokens, counters, replicas (when any)
 *   Abort                      aborts the call that gave a request_id
 *   KvEvents                   the engine's prefix-cache changes (kvEventsHandler.ts)
 * With an API key every RPC but Health wants metadata `authorization: Bearer <key>`.
 */
import type { handleServerStreamingCall, handleUnaryCall, sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Metadata } from "@grpc/grpc-js";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { EngineClient } from "../engine/types";
import { isReplicated } from "../engine/replicated";
import { DEFAULT_MAX_BODY_BYTES } from "../server/requestBody";
import { metricsToWire } from "./convert";
import { handleGenerate, handleGenerateStream } from "./generateHandlers";
import { kvEventsService } from "./kvEventsHandler";
import { FASTGEN_SERVICE } from "./proto";
import type { AdmissionGate } from "./serviceState";
import { GrpcServiceState } from "./serviceState";
import { invalidArgument, toServiceError } from "./status";
import type {
  WireAbortReply, WireAbortRequest, WireGenerateDelta, WireGenerateReply, WireGenerateRequest, WireGenerateStreamRequest, WireHealthReply,
  WireListModelsReply,
} from "./wire";

/** Largest reply message sent, in bytes. */
const MAX_REPLY_BYTES = 64 * 2 ** 20;

/** Options of {@link createGrpcServer}. */
export interface CreateGrpcServerOptions {
  engine: EngineClient;
  /** The model name clients send (default: engine.modelName). */
  servedModelName?: string;
  /**
   * Largest request message accepted, in bytes: the HTTP body limit (--max-body-bytes, default
   * 8 MiB), so gRPC takes what HTTP takes. Larger calls fail with RESOURCE_EXHAUSTED before they
   * are parsed (a 30M-character prompt grew RSS from 242 MiB to 4.7 GiB).
   */
  maxMessageBytes?: number;
  /** When set, every RPC but Health needs metadata `authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /**
   * Generate calls held at once before RESOURCE_EXHAUSTED (--max-queue). Give the HTTP server's
   * context to count both front ends against one limit (default: no limit, counted here alone).
   */
  admission?: AdmissionGate;
}

/** A created gRPC server: `listen` binds it, `stop` closes it (the engine's owner shuts the engine down). */
export interface FastGenGrpcServer {
  state: GrpcServiceState;
  /** Binds host:port (port 0 = any free one); resolves with the address clients dial. */
  listen(host: string, port: number): Promise<{ address: string; port: number }>;
  /**
   * Stops taking calls (Health says not serving), lets those in flight finish for up to `graceMs`
   * (default 2000), then aborts their generations (they end as ABORT) and closes the server.
   */
  stop(graceMs?: number): Promise<void>;
}

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Partial<Res>>) => void;

/** A unary handler whose thrown errors become statuses; `authorize` runs first when given. */
function unary<Req, Res>(fn: (req: Req, metadata: Metadata) => Partial<Res>, authorize?: (metadata: Metadata) => void): Unary<Req, Res> {
  return (call, callback) => {
    try {
      authorize?.(call.metadata);
      callback(null, fn(call.request, call.metadata));
    } catch (e) {
      callback(toServiceError(e));
    }
  };
}

/** True when `p` settles within `ms`. */
function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([p.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Health needs no key (probes call it). A front end's per-replica detail (addresses, last errors)
 * is the operator's, though: a caller without the key (when one is set) sees replicas by index.
 */
function health(state: GrpcServiceState, detailed: boolean): Partial<WireHealthReply> {
  const { engine } = state;
  const m = engine.metrics();
  const alive = (engine as { healthy?: () => boolean }).healthy?.() ?? true;
  const reply: Partial<WireHealthReply> = {
    serving: !state.stopping && alive,
    requests_waiting: m.requestsWaiting,
    requests_running: m.requestsRunning,
    replicas_healthy: !state.stopping && alive ? 1 : 0,
    outstanding_tokens: state.work.tokens,
    model: { id: state.servedModelName, max_model_len: engine.maxModelLen },
    metrics: metricsToWire(m),
  };
  if (!isReplicated(engine)) return reply;
  const replicas = engine.replicaStatus();
  const healthy = replicas.filter((r) => r.healthy).length;
  return Object.assign(reply, {
    serving: !state.stopping && healthy > 0,
    replicas_healthy: healthy,
    outstanding_tokens: replicas.reduce((s, r) => s + r.outstandingTokens, 0),
    replicas: replicas.map((r, i) => ({
      address: detailed ? r.address : `replica ${i}`, healthy: r.healthy, outstanding_tokens: r.outstandingTokens,
      requests_in_flight: r.requestsInFlight, requests_routed: r.requestsRouted, last_error: detailed ? (r.lastError ?? "") : "",
    })),
  });
}

/** Builds the server; nothing listens until `listen`. */
export function createGrpcServer(options: CreateGrpcServerOptions): FastGenGrpcServer {
  const state = new GrpcServiceState(options.engine, options.servedModelName ?? options.engine.modelName, options.apiKey, options.admission);
  const authorize = (metadata: Metadata) => state.authorize(metadata);
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_BODY_BYTES;
  // Replies may be larger than requests (n samples with logprobs); the server makes them, so they stay bounded.
  const server = new Server({ "grpc.max_receive_message_length": maxBytes, "grpc.max_send_message_length": MAX_REPLY_BYTES });
  const kvEvents = kvEventsService(state);
  const handlers: UntypedServiceImplementation = {
    Generate: ((call, callback) => void handleGenerate(state, call, callback)) as handleUnaryCall<WireGenerateRequest, Partial<WireGenerateReply>>,
    GenerateStream: ((call) => void handleGenerateStream(state, call)) as handleServerStreamingCall<WireGenerateStreamRequest, Partial<WireGenerateDelta>>,
    ListModels: unary<unknown, WireListModelsReply>(() => ({ models: [{ id: state.servedModelName, max_model_len: state.maxModelLen }] }), authorize),
    Health: unary<unknown, WireHealthReply>((_, metadata) => health(state, state.authorized(metadata))),
    Abort: unary<WireAbortRequest, WireAbortReply>((req) => {
      if (req.request_id === "") throw invalidArgument("request_id", "is required");
      return { found: state.requests.abort(req.request_id) };
    }, authorize),
    KvEvents: kvEvents.handler,
  };
  server.addService(FASTGEN_SERVICE, handlers);

  return {
    state,
    listen(host, port) {
      const shown = host.includes(":") ? `[${host}]` : host;
      return new Promise((resolve, reject) =>
        server.bindAsync(`${shown}:${port}`, ServerCredentials.createInsecure(), (err, bound) =>
          err ? reject(err) : resolve({ address: `${shown}:${bound}`, port: bound }),
        ),
      );
    },
    async stop(graceMs = 2000) {
      state.stopping = true;
      kvEvents.endAll(); // subscriptions never end on their own: they would hold the grace period
      const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      if (await within(closed, graceMs)) return;
      state.requests.abortAll(); // past the grace period: generations end as ABORT, calls complete
      if (!(await within(closed, 1000))) server.forceShutdown();
    },
  };
}
