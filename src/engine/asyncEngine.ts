/**
 * AsyncEngine: the EngineClient callers use. The engine loop (scheduler + fg_step) runs in an
 * engine host behind an EngineTransport (engineTransport.ts): a Bun Worker, or a child process
 * that a SupervisedEngine restarts when it crashes. Either way a forward pass never blocks request
 * handling on this thread. Each request's deltas arrive as messages and are handed out through an
 * async iterator.
 */
import type { EngineOptions } from "./options";
import type { EngineClient, EngineMetrics, GenerateRequest, GenerationDelta } from "./types";
import { EngineOverloadedError, EngineStepError, RequestRejectedError } from "./types";
import type { FromWorker, SerializedError, ToWorker, WorkerReadyInfo } from "./workerProtocol";
import { Tokenizer } from "../tokenizer/tokenizer";
import { DeltaQueue } from "./deltaQueue";
import type { EngineTransport } from "./engineTransport";
import { workerTransport } from "./engineTransport";
import type { KvEventBatch } from "./kvCache/kvEvents";
import type { KvEventSource } from "./kvEventHub";
import { KvEventHub } from "./kvEventHub";

export interface StartEngineHooks {
  /** Weight loading progress (tensors done / total). */
  onProgress?: (done: number, total: number) => void;
}

/** What AsyncEngine does when its host dies unasked (a crash). */
export interface EngineCrashHooks {
  /**
   * Called once, with the requests in flight (accepted, not finished), before they are failed:
   * returns the error each of them fails with (default: "engine worker crashed: <reason>").
   */
  onCrash?: (reason: string, inFlight: GenerateRequest[]) => Error;
}

const EMPTY_METRICS: EngineMetrics = {
  requestsWaiting: 0, requestsRunning: 0, kvBlocksTotal: 0, kvBlocksFree: 0, promptTokensTotal: 0,
  generationTokensTotal: 0, requestsFinishedTotal: 0, preemptionsTotal: 0, stepsTotal: 0,
  prefixCacheQueriesTotal: 0, prefixCacheHitsTotal: 0,
};

function reviveError(e: SerializedError): Error {
  if (e.name === "EngineOverloadedError") return new EngineOverloadedError(e.message);
  if (e.name === "RequestRejectedError") return new RequestRejectedError(e.message);
  if (e.name === "EngineStepError") return new EngineStepError(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** Loads `modelDir` in the host behind `transport`; resolves once the model is loaded. */
export async function connectEngine(
  transport: EngineTransport,
  modelDir: string,
  options: Partial<EngineOptions> = {},
  hooks: StartEngineHooks & EngineCrashHooks = {},
): Promise<AsyncEngine> {
  const tokenizer = await Tokenizer.fromDir(modelDir);
  const info = await new Promise<WorkerReadyInfo>((resolve, reject) => {
    transport.listen(
      (m) => {
        if (m.type === "progress") hooks.onProgress?.(m.done, m.total);
        else if (m.type === "ready") resolve(m.info);
        else if (m.type === "init-error") {
          transport.terminate();
          reject(reviveError(m.error));
        }
      },
      (reason) => reject(new Error(`engine failed to start: ${reason}`)),
    );
    transport.post({ type: "init", modelDir, options } satisfies ToWorker);
  });
  return new AsyncEngine(transport, info, tokenizer, hooks);
}

/** Starts an engine Worker on `modelDir` and resolves once the model is loaded. */
export function startEngine(modelDir: string, options: Partial<EngineOptions> = {}, hooks: StartEngineHooks = {}): Promise<AsyncEngine> {
  return connectEngine(workerTransport(), modelDir, options, hooks);
}

export class AsyncEngine implements EngineClient, KvEventSource {
  readonly modelName: string;
  readonly maxModelLen: number;
  private readonly queues = new Map<string, { queue: DeltaQueue; request: GenerateRequest }>();
  private lastMetrics: EngineMetrics = { ...EMPTY_METRICS };
  private closed = false;
  private crashed = false;
  private failedWith: string | null = null;  // the native engine's fatal error ("engine failed: ...")
  private closedPromise: Promise<void>;
  /** The prefix cache's block index, from the host's KV events (cache-aware routing follows it). */
  private readonly kvHub = new KvEventHub();

  constructor(
    private readonly transport: EngineTransport,
    readonly info: WorkerReadyInfo,
    readonly tokenizer: Tokenizer,
    private readonly crashHooks: EngineCrashHooks = {},
  ) {
    this.modelName = info.modelName;
    this.maxModelLen = info.maxModelLen;
    this.lastMetrics.kvBlocksTotal = this.lastMetrics.kvBlocksFree = info.numBlocks;
    let onClosed!: () => void;
    this.closedPromise = new Promise((r) => (onClosed = r));
    transport.listen((m) => this.onMessage(m, onClosed), (reason) => this.onExit(reason, onClosed));
  }

  /** Tokens the KV cache holds. */
  get kvCacheTokens(): number {
    return this.info.numBlocks * this.info.blockSize;
  }

  private onMessage(m: FromWorker, onClosed: () => void): void {
    if (m.type === "deltas") {
      this.lastMetrics = m.metrics;
      if (m.kvEvents) this.kvHub.publish(m.kvEvents);
      for (const { id, deltas } of m.items) this.queues.get(id)?.queue.push(deltas);
    } else if (m.type === "request-error") {
      this.queues.get(m.id)?.queue.fail(reviveError(m.error));
    } else if (m.type === "fatal") {
      this.crashed = true;
      this.failedWith = m.error.message;
      this.failAll(reviveError(m.error));
    } else if (m.type === "closed") {
      this.failAll(new Error("engine shut down"));
      onClosed();
    }
  }

  /** The host died: unasked, that is a crash (its requests fail); during shutdown, it closed. */
  private onExit(reason: string, onClosed: () => void): void {
    if (this.closed) {
      this.failAll(new Error("engine shut down"));
      return onClosed();
    }
    this.crashed = true;
    const inFlight = [...this.queues.values()].map((q) => q.request);
    this.failAll(this.crashHooks.onCrash?.(reason, inFlight) ?? new Error(`engine worker crashed: ${reason}`));
  }

  private failAll(err: Error): void {
    for (const q of this.queues.values()) q.queue.fail(err);
    this.queues.clear();
  }

  async *generate(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<GenerationDelta> {
    if (this.closed) throw new Error("engine is shut down");
    if (this.failedWith) throw new Error(this.failedWith);
    if (this.crashed) throw new Error("engine worker crashed");
    if (this.queues.has(request.requestId)) throw new RequestRejectedError(`duplicate request id ${request.requestId}`);
    const n = request.sampling.n ?? 1;
    const queue = new DeltaQueue(n);
    this.queues.set(request.requestId, { queue, request });
    const abort = () => this.post({ type: "abort", id: request.requestId });
    signal?.addEventListener("abort", abort, { once: true });
    this.post({ type: "add", id: request.requestId, promptIds: request.promptIds, sampling: request.sampling, firstSample: request.firstSample });
    try {
      for await (const delta of queue) yield delta;
    } finally {
      signal?.removeEventListener("abort", abort);
      // Left early (break, throw, disconnect): abort so the KV blocks are freed.
      if (!queue.done) abort();
      if (this.queues.get(request.requestId)?.queue === queue) this.queues.delete(request.requestId);
    }
  }

  subscribeKvEvents(listener: (batch: KvEventBatch) => void): { snapshot: KvEventBatch; unsubscribe(): void } {
    return this.kvHub.subscribeKvEvents(listener);
  }

  /** False once the engine was shut down or its host crashed (/health answers 503). */
  healthy(): boolean {
    return !this.closed && !this.crashed;
  }

  metrics(): EngineMetrics {
    return { ...this.lastMetrics };
  }

  /** Requests accepted and not finished. */
  get requestsInFlight(): number {
    return this.queues.size;
  }

  /**
   * Tests only (fault injection): the next `n` forward passes fail inside libfastgen, failing the
   * requests in them with EngineStepError. No server route calls it.
   */
  debugFailNextSteps(n: number, device = false): void {
    this.post({ type: "debug-fail-steps", n, device });
  }

  private post(m: ToWorker): void {
    if (!this.closed && !this.crashed) this.transport.post(m);
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.post({ type: "shutdown" });
    this.closed = true;
    // A cleared timer, not Bun.sleep: a pending sleep would keep the process alive 5 s after shutdown.
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (!this.crashed) await Promise.race([this.closedPromise, new Promise<void>((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    this.transport.terminate();
    this.failAll(new Error("engine shut down"));
  }
}
