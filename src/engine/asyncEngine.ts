/**
 * AsyncEngine: the EngineClient callers use. The engine loop (scheduler + fg_step) runs in a Bun
 * Worker (engineWorker.ts), so a forward pass never blocks request handling on this thread.
 * Each request's deltas arrive as messages and are handed out through an async iterator.
 */
import type { EngineOptions } from "./options";
import type { EngineClient, EngineMetrics, GenerateRequest, GenerationDelta } from "./types";
import { EngineOverloadedError, EngineStepError, RequestRejectedError } from "./types";
import type { FromWorker, SerializedError, ToWorker, WorkerReadyInfo } from "./workerProtocol";
import { Tokenizer } from "../tokenizer/tokenizer";
import { DeltaQueue } from "./deltaQueue";

export interface StartEngineHooks {
  /** Weight loading progress (tensors done / total). */
  onProgress?: (done: number, total: number) => void;
}

const EMPTY_METRICS: EngineMetrics = {
  requestsWaiting: 0, requestsRunning: 0, kvBlocksTotal: 0, kvBlocksFree: 0, promptTokensTotal: 0,
  generationTokensTotal: 0, requestsFinishedTotal: 0, preemptionsTotal: 0, stepsTotal: 0,
};

function reviveError(e: SerializedError): Error {
  if (e.name === "EngineOverloadedError") return new EngineOverloadedError(e.message);
  if (e.name === "RequestRejectedError") return new RequestRejectedError(e.message);
  if (e.name === "EngineStepError") return new EngineStepError(e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/**
 * The Worker's entry: this folder's engineWorker.ts, or in the single binary (scripts/compile.ts
 * passes it as a second entry point) the path it was bundled under.
 */
function workerEntry(): string {
  // bun build --compile roots the bundle at src/ (the entry points' common folder).
  if (process.env.FASTGEN_COMPILED) return "/$bunfs/root/engine/engineWorker.js";
  return new URL("./engineWorker.ts", import.meta.url).href;
}

/** Starts an engine Worker on `modelDir` and resolves once the model is loaded. */
export async function startEngine(
  modelDir: string,
  options: Partial<EngineOptions> = {},
  hooks: StartEngineHooks = {},
): Promise<AsyncEngine> {
  const tokenizer = await Tokenizer.fromDir(modelDir);
  // The env is passed explicitly: the single binary sets FASTGEN_LIB after start-up.
  const worker = new Worker(workerEntry(), { env: { ...process.env } } as WorkerOptions);
  const info = await new Promise<WorkerReadyInfo>((resolve, reject) => {
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.type === "progress") hooks.onProgress?.(m.done, m.total);
      else if (m.type === "ready") resolve(m.info);
      else if (m.type === "init-error") {
        worker.terminate();
        reject(reviveError(m.error));
      }
    };
    worker.onerror = (ev) => reject(new Error(`engine worker failed to start: ${ev.message}`));
    worker.postMessage({ type: "init", modelDir, options } satisfies ToWorker);
  });
  return new AsyncEngine(worker, info, tokenizer);
}

export class AsyncEngine implements EngineClient {
  readonly modelName: string;
  readonly maxModelLen: number;
  private readonly queues = new Map<string, DeltaQueue>();
  private lastMetrics: EngineMetrics = { ...EMPTY_METRICS };
  private closed = false;
  private crashed = false;
  private failedWith: string | null = null;  // the native engine's fatal error ("engine failed: ...")
  private closedPromise: Promise<void>;

  constructor(
    private readonly worker: Worker,
    readonly info: WorkerReadyInfo,
    readonly tokenizer: Tokenizer,
  ) {
    this.modelName = info.modelName;
    this.maxModelLen = info.maxModelLen;
    this.lastMetrics.kvBlocksTotal = this.lastMetrics.kvBlocksFree = info.numBlocks;
    let onClosed!: () => void;
    this.closedPromise = new Promise((r) => (onClosed = r));
    worker.onmessage = (ev: MessageEvent<FromWorker>) => this.onMessage(ev.data, onClosed);
    worker.onerror = (ev) => {
      this.crashed = true;
      this.failAll(new Error(`engine worker crashed: ${ev.message}`));
    };
  }

  private onMessage(m: FromWorker, onClosed: () => void): void {
    if (m.type === "deltas") {
      this.lastMetrics = m.metrics;
      for (const { id, deltas } of m.items) this.queues.get(id)?.push(deltas);
    } else if (m.type === "request-error") {
      this.queues.get(m.id)?.fail(reviveError(m.error));
    } else if (m.type === "fatal") {
      this.crashed = true;
      this.failedWith = m.error.message;
      this.failAll(reviveError(m.error));
    } else if (m.type === "closed") {
      this.failAll(new Error("engine shut down"));
      onClosed();
    }
  }

  private failAll(err: Error): void {
    for (const q of this.queues.values()) q.fail(err);
    this.queues.clear();
  }

  async *generate(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<GenerationDelta> {
    if (this.closed) throw new Error("engine is shut down");
    if (this.failedWith) throw new Error(this.failedWith);
    if (this.queues.has(request.requestId)) throw new RequestRejectedError(`duplicate request id ${request.requestId}`);
    const n = request.sampling.n ?? 1;
    const queue = new DeltaQueue(n);
    this.queues.set(request.requestId, queue);
    const abort = () => this.post({ type: "abort", id: request.requestId });
    signal?.addEventListener("abort", abort, { once: true });
    this.post({ type: "add", id: request.requestId, promptIds: request.promptIds, sampling: request.sampling });
    try {
      for await (const delta of queue) yield delta;
    } finally {
      signal?.removeEventListener("abort", abort);
      // Left early (break, throw, disconnect): abort so the KV blocks are freed.
      if (!queue.done) abort();
      this.queues.delete(request.requestId);
    }
  }

  /** False once the engine was shut down or its worker crashed (/health answers 503). */
  healthy(): boolean {
    return !this.closed && !this.crashed;
  }

  metrics(): EngineMetrics {
    return { ...this.lastMetrics };
  }

  /**
   * Tests only (fault injection): the next `n` forward passes fail inside libfastgen, failing the
   * requests in them with EngineStepError. No server route calls it.
   */
  debugFailNextSteps(n: number, device = false): void {
    this.post({ type: "debug-fail-steps", n, device });
  }

  private post(m: ToWorker): void {
    if (!this.closed) this.worker.postMessage(m);
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.post({ type: "shutdown" });
    this.closed = true;
    // A cleared timer, not Bun.sleep: a pending sleep would keep the process alive 5 s after shutdown.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.closedPromise, new Promise<void>((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    this.worker.terminate();
    this.failAll(new Error("engine shut down"));
  }
}
