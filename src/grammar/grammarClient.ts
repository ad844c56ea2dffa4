/**
 * GrammarClient: the engine thread's channel to one grammar Worker (worker/grammarWorker.ts).
 * Each request message gets the next id, which also orders it: the Worker answers in that order,
 * so a mask asked for before a compile comes back before the compile starts, and one asked for
 * after waits for it (firstSlow says where that line is).
 *
 * The Worker is ref'd only while an answer is awaited, so an idle one never keeps the process
 * alive. A Worker that dies, fails to start, or is failed from outside (a mask timeout) rejects
 * everything awaited with one GrammarWorkerError and is terminated; the owner starts a new one.
 *
 * Every compile has a deadline (compileTimeoutMs), from the Worker's word that it started it (a
 * compile queued behind another is not charged for its wait): past it, the creates of that key
 * reject with GrammarCompileTimeoutError (the request's fault) and the Worker is failed as above,
 * the only way to stop XGrammar's synchronous WebAssembly.
 */
import { GrammarCompileTimeoutError, GrammarError, GrammarWorkerError } from "./grammarErrors";
import type { StructuredOutput } from "./spec";
import { grammarKey } from "./spec";
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

/** How long one compile may run in a Worker before it is ended (EngineOptions.grammarCompileTimeout). */
export const DEFAULT_COMPILE_TIMEOUT_MS = 30_000;

export interface GrammarClientOptions {
  /** Compiled grammars the Worker keeps (grammarCache.ts's default when absent). */
  cacheSize?: number;
  /** Deadline of one compile, from its start in the Worker. */
  compileTimeoutMs?: number;
}

/** A create in flight: its grammar's key, and its deadline once the Worker started it. */
interface Compile {
  key: string;
  type: StructuredOutput["type"];
  deadline: ReturnType<typeof setTimeout> | null;
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
  /** Creates in flight, by id. */
  private readonly compiles = new Map<number, Compile>();
  private readonly compileTimeoutMs: number;
  private nextId = 1;
  private events: { promise: Promise<void>; resolve(): void } | null = null;
  /** Set once the Worker is gone: every later call rejects with it. */
  failure: GrammarWorkerError | null = null;
  /** Resolves when the Worker has built its vocabulary and compiler. */
  readonly ready: Promise<Extract<FromGrammarWorker, { type: "ready" }>>;
  /** Called once, when the Worker fails. */
  onFailure: (e: GrammarWorkerError) => void = () => {};
  /** Whether the Worker was ended for a compile past its deadline. */
  compileTimedOut = false;

  constructor(source: GrammarSource, stopTokenIds: number[], options: GrammarClientOptions = {}) {
    const { cacheSize, compileTimeoutMs = DEFAULT_COMPILE_TIMEOUT_MS } = options;
    if (!(compileTimeoutMs > 0)) throw new Error(`the grammar compile timeout must be > 0 ms, got ${compileTimeoutMs}`);
    this.compileTimeoutMs = compileTimeoutMs;
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
   * @throws GrammarError for a constraint that does not compile (GrammarCompileTimeoutError: not
   *   in time), GrammarWorkerError
   */
  async create(spec: StructuredOutput, n: number, slow: boolean): Promise<Created> {
    const id = this.nextId++;
    if (slow) this.slow.add(id);
    if (!this.failure) this.compiles.set(id, { key: grammarKey(spec), type: spec.type, deadline: null });
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
    for (const c of this.compiles.values()) clearTimeout(c.deadline ?? undefined);
    this.compiles.clear();
    for (const a of awaited) a.reject(error);
    this.signal();
    this.onFailure(error);
  }

  /** Terminates the Worker (the engine is done with it). */
  terminate(): void {
    this.fail(new GrammarWorkerError("the grammar worker was shut down"));
  }

  /** TEST ONLY: the Worker blocks while int32 0 of `flag` is 1: now, or `inCompile` in its next create. */
  debugHold(flag: SharedArrayBuffer, inCompile = false): void {
    this.post({ type: "debug-hold", flag, inCompile });
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
    if (m.type === "compiling") return this.startDeadline(m.id);
    const id = m.type === "ready" || m.type === "init-error" ? 0 : m.id;
    const compile = this.compiles.get(id);
    if (compile) {
      clearTimeout(compile.deadline ?? undefined);
      this.compiles.delete(id);
    }
    const a = this.awaited.get(id);
    this.awaited.delete(id);
    this.slow.delete(id);
    if (this.awaited.size === 0) this.worker.unref();
    this.signal();
    if (m.type === "init-error") return this.fail(new GrammarWorkerError(`the grammar worker could not start: ${m.message}`));
    if (m.type === "error" && m.name !== "GrammarError") a?.reject(new GrammarWorkerError(`the grammar worker failed: ${m.message}`));
    else a?.resolve(m);
  }

  /** Create `id` started in the Worker: it must answer within compileTimeoutMs. */
  private startDeadline(id: number): void {
    const compile = this.compiles.get(id);
    if (compile === undefined || this.failure) return;
    // setTimeout fires at once past 2^31 - 1 ms (~24.8 days): a huge limit means that long.
    compile.deadline = setTimeout(() => this.compileTimeout(compile), Math.min(this.compileTimeoutMs, 2 ** 31 - 1));
  }

  /**
   * A compile ran past its deadline: every create of its key (the requests waiting on it) fails
   * with the limit named, then the Worker is ended, which fails the rest of its work.
   */
  private compileTimeout(compile: Compile): void {
    if (this.failure) return;
    const s = this.compileTimeoutMs / 1000;
    const error = new GrammarCompileTimeoutError(
      `the ${compile.type} constraint did not compile within ${s} s (the server's --grammar-compile-timeout); simplify it`,
    );
    for (const [id, c] of this.compiles) {
      if (c.key !== compile.key) continue;
      const a = this.awaited.get(id);
      this.awaited.delete(id);
      a?.reject(error);
    }
    this.compileTimedOut = true;
    this.fail(new GrammarWorkerError(`the grammar worker was ended: a ${compile.type} constraint's compile ran past ${s} s (--grammar-compile-timeout)`));
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
