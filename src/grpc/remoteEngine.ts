/**
 * RemoteEngine: an EngineClient over a FastGen gRPC server (a `fastgen replica` or another front
 * end). The prompt goes as token ids, so the tokenizer stays on this side; deltas come back through
 * GenerateStream. Transport failures become ReplicaUnavailableError (the load balancer's cue to take
 * the replica out), marked `started` when the connection broke after the replica had accepted the
 * request (acceptSignal.ts); the server's refusals become the engine's own error types.
 */
import { status } from "@grpc/grpc-js";
import type { EngineClient, EngineMetrics, GenerateRequest, GenerationDelta } from "../engine/types";
import { EngineOverloadedError, EngineStepError, RequestRejectedError } from "../engine/types";
import { ReplicaUnavailableError } from "../engine/replicaErrors";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { ACCEPTED_KEY, REPLIED_KEY } from "./acceptSignal";
import { deltaFromWire, metricsFromWire, samplingToWire } from "./convert";
import type { WireKvEventBatch } from "./kvEventsWire";
import type { RpcStream } from "./rpcClient";
import { isServiceError, RpcClient, statusName } from "./rpcClient";
import type { WireGenerateDelta, WireGenerateStreamRequest, WireHealthReply } from "./wire";

/** A replica's answer to a health probe. */
export interface ReplicaHealth {
  serving: boolean;
  modelName: string;
  maxModelLen: number;
  /** Queued + running tokens the replica holds (from every front end using it). */
  outstandingTokens: number;
  metrics: EngineMetrics;
}

const REJECTED = new Set<number>([status.INVALID_ARGUMENT, status.NOT_FOUND, status.ALREADY_EXISTS, status.OUT_OF_RANGE, status.FAILED_PRECONDITION]);
/** The replica answered but failed this request: its fault, not the connection's (it stays in). */
const FAILED_HERE = new Set<number>([status.INTERNAL, status.UNKNOWN, status.DATA_LOSS]);

/**
 * The model name and context length are the remote end's, as its last health probe told them
 * ("" and 0 until one answered): call probe() before relying on them.
 */
export class RemoteEngine implements EngineClient {
  private readonly rpc: RpcClient;
  private lastMetrics: EngineMetrics = metricsFromWire(0, 0, null);
  private model = { name: "", maxLen: 0 };
  /** Whether an authenticated call has succeeded since the last refusal (Health needs no key). */
  private keyAccepted = false;

  constructor(
    readonly address: string,
    /** The served model's tokenizer, loaded on this side (prompts travel as token ids). */
    readonly tokenizer: Tokenizer,
    /** The replica's API key, if it wants one. */
    apiKey?: string,
  ) {
    this.rpc = new RpcClient(address, { apiKey });
  }

  get modelName(): string {
    return this.model.name;
  }

  get maxModelLen(): number {
    return this.model.maxLen;
  }

  /**
   * The engine's error for a failed call. `accepted`: the replica had signalled that it took the
   * request; a failure then is one of a replica that died holding it, unless the replica itself
   * answered the status (its trailers say so).
   */
  private engineError(e: unknown, accepted = false): Error {
    if (!isServiceError(e)) return e instanceof Error ? e : new Error(String(e));
    if (e.code === status.UNAUTHENTICATED || e.code === status.PERMISSION_DENIED) this.keyAccepted = false;
    if (e.code === status.RESOURCE_EXHAUSTED) return new EngineOverloadedError(e.details);
    if (REJECTED.has(e.code)) return new RequestRejectedError(e.details);
    const replied = e.metadata?.get(REPLIED_KEY).length > 0;
    // A replica's own INTERNAL is a failed step; one made up by the transport is a broken connection.
    if (FAILED_HERE.has(e.code) && (replied || !accepted)) return new EngineStepError(e.details);
    return new ReplicaUnavailableError(this.address, `${statusName(e.code)}: ${e.details}`, accepted && !replied);
  }

  /**
   * Asks the replica's Health; throws ReplicaUnavailableError when it does not answer in time, or
   * when it refuses this side's API key (checked with ListModels until it has been accepted).
   */
  async probe(timeoutMs: number): Promise<ReplicaHealth> {
    let reply: WireHealthReply;
    try {
      reply = await this.rpc.unary<WireHealthReply>("Health", {}, timeoutMs);
      if (!this.keyAccepted) await this.rpc.unary("ListModels", {}, timeoutMs);
      this.keyAccepted = true;
    } catch (e) {
      throw this.engineError(e);
    }
    this.lastMetrics = metricsFromWire(reply.requests_waiting, reply.requests_running, reply.metrics);
    this.model = { name: reply.model?.id ?? "", maxLen: reply.model?.max_model_len ?? 0 };
    return {
      serving: reply.serving,
      modelName: this.model.name,
      maxModelLen: this.model.maxLen,
      outstandingTokens: reply.outstanding_tokens,
      metrics: this.lastMetrics,
    };
  }

  /**
   * Streams the request's deltas from the replica. `onAccepted` is called when the replica signals
   * that it took the request (before any delta; the load balancer's "it is running there").
   */
  async *generate(request: GenerateRequest, signal?: AbortSignal, onAccepted?: () => void): AsyncGenerator<GenerationDelta> {
    const n = request.sampling.n ?? 1;
    const open = new Set(Array.from({ length: n }, (_, i) => i));
    const message: Partial<WireGenerateStreamRequest> = {
      prompt: { token_ids: { ids: request.promptIds } },
      params: samplingToWire(request.sampling) as WireGenerateStreamRequest["params"],
      request_id: request.requestId,
      first_sample: request.firstSample ?? 0,
    };
    if (signal?.aborted) return;
    let accepted = false;
    const call = this.rpc.stream<WireGenerateDelta>("GenerateStream", message, (md) => {
      if (accepted || md.get(ACCEPTED_KEY).length === 0) return;
      accepted = true;
      onAccepted?.();
    });
    const onAbort = () => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const m of call.messages) {
        const delta = deltaFromWire(m);
        if (delta.finishReason) open.delete(delta.index);
        yield delta;
      }
    } catch (e) {
      if (!(signal?.aborted && isServiceError(e) && e.code === status.CANCELLED)) throw this.engineError(e, accepted);
      // Aborted by our caller: close the open samples as the in-process engine does.
      for (const index of open) yield { index, tokenIds: [], text: "", finishReason: "abort" };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Follows the replica's prefix cache (the KvEvents RPC: a snapshot, then a batch per change). */
  kvEvents(): RpcStream<WireKvEventBatch> {
    return this.rpc.stream<WireKvEventBatch>("KvEvents", {});
  }

  /** The counters of the last health probe. */
  metrics(): EngineMetrics {
    return { ...this.lastMetrics };
  }

  /** Closes the channel (the replica itself keeps running: its owner stops it). */
  async shutdown(): Promise<void> {
    this.rpc.close();
  }
}
