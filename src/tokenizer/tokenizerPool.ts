/**
 * Tokenizes long texts in a few Bun Workers (tokenizerWorker.ts) so the serving thread stays free:
 * @huggingface/tokenizers runs at 0.2-0.4 µs a character here, so a 7.8 MB prompt held /health
 * for 1.5 s and four of them for over 4 s (issue #25); rendering a chat template costs 2-20 µs a
 * message, so a body of 300K tiny messages held it too. Each worker builds its own copy of the
 * tokenizer from the same files, so ids are exactly those of Tokenizer.encode.
 *
 *   run(tasks) -> queue (FIFO, bounded in characters) -> idle worker, one task at a time
 *                 worker: {type:"task", encode | chat} -> {type:"done", ids: Int32Array (transferred)}
 *
 * Workers start on first need and are unref'd while idle, so an idle pool never keeps a process
 * alive. A worker that dies fails its job and is replaced by the next job.
 */
import type { TokenizerFiles } from "./tokenizerFiles";
import type { TaskError, TaskResult, TokenizerTask } from "./tokenizerTasks";
import { envVar } from "../envVars";

/** Where a worker builds its tokenizer from: the model directory, or files already parsed. */
export type TokenizerSource = { dir: string } | { files: TokenizerFiles };

/** Messages to a tokenizer worker. */
export type ToTokenizerWorker = { type: "init"; source: TokenizerSource } | { type: "task"; id: number; task: TokenizerTask };

/** Messages from a tokenizer worker. */
export type FromTokenizerWorker =
  | { type: "done"; id: number; ids: Int32Array; text?: string }
  | { type: "error"; id: number; error: TaskError }
  | { type: "init-error"; message: string };

/** The pool's queue is full: the caller should answer "overloaded, retry later". */
export class TokenizerBusyError extends Error {
  override name = "TokenizerBusyError";
}

/** A worker failed to start or died while encoding. */
export class TokenizerWorkerError extends Error {
  override name = "TokenizerWorkerError";
}

/** Workers per pool: tokenizing competes with the engine for cores, and 2 keep one slow job from blocking the rest. */
export const DEFAULT_TOKENIZER_WORKERS = 2;

/**
 * Characters queued or being encoded before new work is refused: about four 8 MiB bodies, a few
 * seconds of work for two workers. Past it a request waits longer than a client would.
 */
export const MAX_QUEUED_CHARS = 32 * 2 ** 20;

interface Job {
  id: number;
  task: TokenizerTask;
  /** Characters the task handles, what the queue bound counts. */
  cost: number;
  resolve(result: TaskResult): void;
  reject(e: TaskError | Error): void;
}

/** Bun's Worker, whose ref/unref the DOM typing lacks. */
type PoolWorker = Worker & { ref(): void; unref(): void };

interface Slot {
  worker: PoolWorker;
  job: Job | null;
}

/** The worker's entry: beside this file, or where scripts/compile.ts bundled it in the single binary. */
function workerEntry(): string {
  // bun build --compile roots the bundle at src/ (the entry points' common folder).
  if (envVar("FASTGEN_COMPILED")) return "/$bunfs/root/tokenizer/tokenizerWorker.js";
  return new URL("./tokenizerWorker.ts", import.meta.url).href;
}

/** A small pool of tokenizer workers over one tokenizer's files. */
export class TokenizerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private queuedChars = 0;
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly source: TokenizerSource,
    private readonly size = DEFAULT_TOKENIZER_WORKERS,
  ) {}

  /**
   * Runs tasks on the workers (in parallel across them). `costs[i]` is task i's size in
   * characters. A task's own failure rejects with its TaskError (the caller rebuilds the typed error).
   */
  run(tasks: readonly TokenizerTask[], costs: readonly number[]): Promise<TaskResult[]> {
    if (this.closed) return Promise.reject(new TokenizerWorkerError("the tokenizer pool is closed"));
    const chars = costs.reduce((n, c) => n + c, 0);
    // An empty queue takes any one request, so a lone large one is never refused.
    if (this.queuedChars > 0 && this.queuedChars + chars > MAX_QUEUED_CHARS)
      return Promise.reject(new TokenizerBusyError(`the tokenizer is busy (${this.queuedChars} characters queued); retry shortly`));
    const all = tasks.map(
      (task, i) =>
        new Promise<TaskResult>((resolve, reject) => {
          this.queue.push({ id: this.nextId++, task, cost: costs[i]!, resolve, reject });
          this.queuedChars += costs[i]!;
        }),
    );
    this.pump();
    return Promise.all(all);
  }

  /** Stops every worker; queued and running jobs fail. */
  close(): void {
    this.closed = true;
    const error = new TokenizerWorkerError("the tokenizer pool is closed");
    for (const job of this.queue.splice(0)) job.reject(error);
    for (const slot of this.slots.splice(0)) {
      slot.job?.reject(error);
      slot.worker.terminate();
    }
    this.queuedChars = 0;
  }

  /** Hands queued jobs to idle workers, starting workers up to the pool's size. */
  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.job === null);
      if (slot === undefined && this.slots.length < this.size) slot = this.spawn();
      if (slot === undefined) return;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage({ type: "task", id: job.id, task: job.task } satisfies ToTokenizerWorker);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(workerEntry()) as PoolWorker;
    const slot: Slot = { worker, job: null };
    worker.onmessage = (ev: MessageEvent<FromTokenizerWorker>) => this.onMessage(slot, ev.data);
    worker.onerror = (ev) => this.fail(slot, new TokenizerWorkerError(`tokenizer worker failed: ${ev.message}`), false);
    worker.postMessage({ type: "init", source: this.source } satisfies ToTokenizerWorker);
    this.slots.push(slot);
    return slot;
  }

  private onMessage(slot: Slot, m: FromTokenizerWorker): void {
    if (m.type === "init-error") {
      // The files cannot be read in a worker: every queued job would fail the same way.
      this.fail(slot, new TokenizerWorkerError(`tokenizer worker could not load the tokenizer: ${m.message}`), true);
      return;
    }
    const job = slot.job;
    if (job === null || job.id !== m.id) return;
    this.finish(slot, job);
    if (m.type === "done") job.resolve({ ids: Array.from(m.ids), text: m.text });
    else job.reject(m.error);
    this.pump();
  }

  private finish(slot: Slot, job: Job): void {
    slot.job = null;
    slot.worker.unref();
    this.queuedChars -= job.cost;
  }

  /** A worker is gone: its job fails (and with `all`, every queued one), the next job starts a new worker. */
  private fail(slot: Slot, error: Error, all: boolean): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    slot.worker.terminate();
    const job = slot.job;
    if (job !== null) {
      this.finish(slot, job);
      job.reject(error);
    }
    if (all) {
      for (const queued of this.queue.splice(0)) {
        this.queuedChars -= queued.cost;
        queued.reject(error);
      }
    }
    this.pump();
  }
}
