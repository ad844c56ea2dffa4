/**
 * GrammarClient: the engine thread's channel to one grammar Worker (worker/grammarWorker.ts).
 * Each request message gets the next id, which also orders it: the Worker answers in that order,
 * so a mask asked for before a compile comes back before the compile starts, and one asked for
 * after waits for it (firstSlow says where that line is).
 *
 * The Worker is ref'd only while an answer is awaited, so an idle one never keeps the process
 * alive. A Worker that dies, fails to start, or is failed from outside (a mask timeout) rejects
 * everything awaited with one GrammarWorkerError and is terminated; the owner starts a new one.
 */
import { GrammarError, GrammarWorkerError } from "./grammarErrors";
import type { StructuredOutput } from "./spec";
import { packSyncs, type FromGrammarWorker, type GrammarSource, type MatcherSync, type ToGrammarWorker } from "./worker/protocol";
import { envVar } from "../envVars";

export type Created = Extract<FromGrammarWorker, { type: "created" }>;
export type MasksReply = Extract<FromGrammarWorker, { type: "masks" }>;

/** Bun's Worker, whose ref/unref the DOM typing lacks. */
type RefWorker = Worker & { ref(): void; unref(): void };

interface Awaited {
  resolve(m: FromGrammarWorker): void;
  reject(e: Error): void;
}

/** The Worker's entry: beside this folder's worker/, or where scripts/compile.ts bundled it. */
function workerEntry(): string {
  // bun build --compile roots the bundle at src/ (the entry points' common folder).
  if (envVar("FASTGEN_COMPILED")) return "/$bunfs/root/grammar/worker/grammarWorker.js";
  return new URL("./worker/grammarWorker.ts", import.meta.url).href;
}

export class GrammarClient {
  private readonly worker: RefWorker;
  private readonly awaited = new Map<number, Awaited>();
  /** Ids of messages in flight that may hold the Worker long (a compile); 0 is init. */
  private readonly slow = new Set<number>([0]);
  private nextId = 1;
  private events: { promise: Promise<void>; resolve(): void } | null = null;
  /** Set once the Worker is gone: every later call rejects with it. */
  failure: GrammarWorkerError | null = null;
  /** Resolves when the Worker has built its vocabulary and compiler. */
  readonly ready: Promise<Extract<FromGrammarWorker, { type: "ready" }>>;
  /** Called once, when the Worker fails. */
  onFailure: (e: GrammarWorkerError) => void = () => {};

  constructor(source: GrammarSource, stopTokenIds: number[], cacheSize?: number) {
    this.worker = new Worker(workerEntry()) as RefWorker;
    this.worker.onmessage = (ev: MessageEvent<FromGrammarWorker>) => this.onMessage(ev.data);
    this.worker.addEventListener("error", (ev) => this.fail(new GrammarWorkerError(`the grammar worker crashed: ${(ev as ErrorEvent).message}`)));
    this.worker.addEventListener("close", () => this.fail(new GrammarWorkerError("the grammar worker exited")));
    this.ready = new Promise((resolve, reject) => {
      this.awaited.set(0, { resolve: (m) => resolve(m as Extract<FromGrammarWorker, { type: "ready" }>), reject });
    });
    this.ready.catch(() => {});
    this.post({ type: "init", source, stopTokenIds, cacheSize });
    this.worker.ref();
  }

  /**
   * Compiles `spec` (or takes it from the Worker's cache) into `n` matchers. `slow`: the key is
   * not known to be compiled, so masks asked for after this wait for the compile.
   * @throws GrammarError for a constraint that does not compile, GrammarWorkerError
   */
  async create(spec: StructuredOutput, n: number, slow: boolean): Promise<Created> {
    const id = this.nextId++;
    if (slow) this.slow.add(id);
    const m = await this.request(id, { type: "create", id, spec, n });
    if (m.type === "created") return m;
    throw this.unexpected(m);
  }

  /** Sends syncs; their masks (in order) come with the answer. `id` orders it against compiles. */
  masks(syncs: MatcherSync[]): { id: number; reply: Promise<MasksReply> } {
    const id = this.nextId++;
    const packed = packSyncs(syncs);
    const reply = this.request(id, { type: "masks", id, syncs: packed }, [packed.buffer]).then((m) => {
      if (m.type === "masks") return m;
      throw this.unexpected(m);
    });
    return { id, reply };
  }

  release(matchers: number[]): void {
    if (matchers.length > 0) this.post({ type: "release", matchers });
  }

  /** Id of the oldest message in flight that may hold the Worker long; Infinity when none. */
  get firstSlow(): number {
    let first = Infinity;
    for (const id of this.slow) first = Math.min(first, id);
    return first;
  }

  /** Resolves at the Worker's next answer, or when it fails. */
  nextEvent(): Promise<void> {
    if (this.failure) return Promise.resolve();
    if (this.events === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.events = { promise, resolve };
    }
    return this.events.promise;
  }

  /** Ends the Worker: everything awaited rejects with `error` (once; later calls do nothing). */
  fail(error: GrammarWorkerError): void {
    if (this.failure) return;
    this.failure = error;
    this.worker.terminate();
    const awaited = [...this.awaited.values()];
    this.awaited.clear();
    this.slow.clear();
    for (const a of awaited) a.reject(error);
    this.signal();
    this.onFailure(error);
  }

  /** Terminates the Worker (the engine is done with it). */
  terminate(): void {
    this.fail(new GrammarWorkerError("the grammar worker was shut down"));
  }

  /** TEST ONLY: the Worker blocks, as in a long compile, while int32 0 of `flag` is 1. */
  debugHold(flag: SharedArrayBuffer): void {
    this.post({ type: "debug-hold", flag });
  }

  /** TEST ONLY: the Worker dies of an uncaught error. */
  debugCrash(): void {
    this.post({ type: "debug-crash" });
  }

  private request(id: number, m: ToGrammarWorker, transfer: Transferable[] = []): Promise<FromGrammarWorker> {
    if (this.failure) return Promise.reject(this.failure);
    const answer = new Promise<FromGrammarWorker>((resolve, reject) => this.awaited.set(id, { resolve, reject }));
    this.post(m, transfer);
    this.worker.ref();
    return answer;
  }

  private post(m: ToGrammarWorker, transfer: Transferable[] = []): void {
    if (this.failure) return;
    this.worker.postMessage(m, transfer);
  }

  private onMessage(m: FromGrammarWorker): void {
    const id = m.type === "ready" || m.type === "init-error" ? 0 : m.id;
    const a = this.awaited.get(id);
    this.awaited.delete(id);
    this.slow.delete(id);
    if (this.awaited.size === 0) this.worker.unref();
    this.signal();
    if (m.type === "init-error") return this.fail(new GrammarWorkerError(`the grammar worker could not start: ${m.message}`));
    if (m.type === "error" && m.name !== "GrammarError") a?.reject(new GrammarWorkerError(`the grammar worker failed: ${m.message}`));
    else a?.resolve(m);
  }

  private signal(): void {
    const e = this.events;
    this.events = null;
    e?.resolve();
  }

  private unexpected(m: FromGrammarWorker): Error {
    if (m.type === "error") return new GrammarError(m.message);
    return new GrammarWorkerError(`the grammar worker answered ${m.type}`);
  }
}
