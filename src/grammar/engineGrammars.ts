/**
 * EngineGrammars: the grammar side of one EngineCore, on the engine thread. XGrammar itself runs
 * in a pool of grammar Workers (grammarPool.ts; grammarClient.ts, worker/): they compile a
 * request's constraint (cached by key, per Worker) into matchers, one per sample in its home
 * Worker and a replica in each other Worker that has the grammar compiled, and compute masks;
 * nothing here blocks on them. This side keeps one SequenceGrammar per sample (accepted ids, next
 * mask), the mask cache (a state seen before needs no Worker), and asks the Workers for the masks
 * of the next pass while the current one runs (maskAsks.ts, maskRound.ts):
 *
 *   requestMasks   once a pass is launched, or when the one before was applied (overlapSteps off,
 *                  or grammarEarlyMasks): the states no cached or shared mask serves, as one round
 *                  whose rows the Workers claim one at a time, so K threads share the work by cost
 *   masksFor       what a pass waits for before its finish: the rows it needs, at most
 *                  maskTimeoutMs; then each Worker still owing an answer is taken for stuck: it is
 *                  ended, and its samples go on with their other replicas or fail
 *   waitsForWorker a sample whose mask would come only after a compile in flight in every Worker
 *                  holding it: the engine leaves it out of the pass (the others decode on)
 *
 * The Workers start on the first constrained request, so an engine that never sees one pays
 * nothing. If one dies, its samples go on in their replicas, those with none fail (takeFailures),
 * and the next request starts a new one. A compile past compileTimeoutMs ends its Worker the same
 * way, and its requests get a 400 (GrammarCompileTimeoutError: grammarClient.ts).
 */
import { GrammarError, GrammarWorkerError } from "./grammarErrors";
import type { GrammarMetrics } from "./grammarMetrics";
import { GrammarPool, defaultGrammarWorkers } from "./grammarPool";
import { MaskAsks, type MaskTiming } from "./maskAsks";
import { MaskCache } from "./maskCache";
import { SequenceGrammar } from "./sequenceGrammar";
import type { StructuredOutput } from "./spec";
import { checkStructuredOutput } from "./spec";
import type { GrammarSource, HoldAt } from "./worker/protocol";

export { GrammarCompileTimeoutError, GrammarError, GrammarWorkerError } from "./grammarErrors";
export { DEFAULT_COMPILE_TIMEOUT_MS } from "./grammarClient";
export { asksMasksEarly, defaultGrammarWorkers } from "./grammarPool";

/** How long a pass waits for its masks (a mask takes microseconds; a pass never waits for a compile). */
export const DEFAULT_MASK_TIMEOUT_MS = 10_000;

/** What EngineGrammars reads of the model: its directory (the Workers load its tokenizer), vocab and stop ids. */
export interface GrammarModel {
  modelDir: string;
  vocabSize: number;
  eosTokenIds: readonly number[];
}

export interface EngineGrammarsOptions {
  /** Grammar Workers; 0 or absent: defaultGrammarWorkers() (grammarPool.ts) for `backend`. */
  workers?: number;
  /** The engine's backend (the default Worker count depends on it); absent: cpu. */
  backend?: "cpu" | "cuda";
  /** The Workers' vocabulary when not the model's tokenizer (benches, tests). */
  source?: GrammarSource;
  /** Deadline of one compile (DEFAULT_COMPILE_TIMEOUT_MS when absent). */
  compileTimeoutMs?: number;
}

export class EngineGrammars {
  private readonly pool: GrammarPool;
  /** Live grammars (one per constrained sample). */
  private readonly live = new Set<SequenceGrammar>();
  private readonly stopIds: ReadonlySet<number>;
  private failures = false;

  /** Masks by exact matcher state, shared by samples in that state (maskCache.ts). */
  readonly maskCache = new MaskCache();
  /**
   * Masks: engine-thread ms handling them (maskMs: askMs asking, receiveMs taking results), ms
   * passes waited for the Workers (waitMs), the Workers' ms computing them (workerMs: summed over
   * Workers, of which syncMs bringing matchers up to date and fillMs in XGrammar's mask fill;
   * busiestMs: the busiest Worker's per round, what a pass can wait for), the hand-offs
   * (toWorkerMs: a round posted to a Worker taking it, summed over Workers; wakeMs: a round's
   * last row written, or the pass's wait begun if later, to the engine taking it); masks handed out, and those XGrammar computed.
   */
  readonly timing: MaskTiming = {
    maskMs: 0, askMs: 0, receiveMs: 0, waitMs: 0, workerMs: 0, syncMs: 0, fillMs: 0, busiestMs: 0,
    toWorkerMs: 0, wakeMs: 0, masks: 0, computed: 0,
  };
  private readonly asks: MaskAsks;
  /** Replicas being made (replicate). */
  private readonly replicating = new Set<Promise<void>>();

  constructor(model: GrammarModel, options: EngineGrammarsOptions = {}) {
    this.stopIds = new Set(model.eosTokenIds);
    const source = options.source ?? { modelDir: model.modelDir, vocabSize: model.vocabSize };
    this.pool = new GrammarPool(options.workers || defaultGrammarWorkers(undefined, options.backend), source, model.eosTokenIds, options.compileTimeoutMs);
    this.asks = new MaskAsks(this.pool, this.live, this.maskCache, this.timing, Math.ceil(model.vocabSize / 32), (g, e) => this.failSample(g, e), DEFAULT_MASK_TIMEOUT_MS);
    this.pool.onFailure = (w, e) => {
      const homes = new Map<SequenceGrammar, number>();
      for (const g of this.live) homes.set(g, g.worker);
      this.asks.workerFailed(w.index, e);
      // A sample whose home died lives on in a replica: its load moves there.
      for (const [g, home] of homes) if (g.worker !== home && g.failure === null) this.pool.moveLoad(home, g.worker);
    };
  }

  /** How long a pass waits for its masks before the Workers owing them are ended. */
  get maskTimeoutMs(): number {
    return this.asks.maskTimeoutMs;
  }

  set maskTimeoutMs(ms: number) {
    this.asks.maskTimeoutMs = ms;
  }

  /** Compiles and cache hits (as the Workers report them), Workers started, the last one's start-up ms. */
  get stats(): GrammarPool["stats"] {
    return this.pool.stats;
  }

  /** The counters /metrics shows (grammarMetrics.ts). */
  metrics(): GrammarMetrics {
    const s = this.pool.stats, t = this.timing;
    return {
      compiles: s.compiles,
      compileSeconds: s.compileMs / 1000,
      cacheHits: s.hits,
      compileTimeouts: s.compileTimeouts,
      masksComputed: t.computed,
      maskWaitSeconds: t.waitMs / 1000,
      workerRestarts: s.restarts,
    };
  }

  /** Grammar Workers in the pool (started or not). */
  get numWorkers(): number {
    return this.pool.size;
  }

  /** True while some sequence decodes under a grammar. */
  get active(): boolean {
    return this.live.size > 0;
  }

  /** Whether a grammar Worker is running. */
  get started(): boolean {
    return this.pool.started;
  }

  /** Starts the Workers not running and waits until all can compile. @throws GrammarWorkerError */
  async ready(): Promise<void> {
    await this.pool.ready();
  }

  /** One grammar per sample of a request constrained by `s`. @throws GrammarError, GrammarWorkerError */
  async forRequest(s: StructuredOutput, n: number): Promise<SequenceGrammar[]> {
    const bad = checkStructuredOutput(s);
    if (bad) throw new GrammarError(bad);
    const created = await this.pool.create(s, n);
    const out = created.matchers.map((m) => new SequenceGrammar(m.worker, m.matcher, created.ref, this.stopIds));
    for (const g of out) this.live.add(g);
    this.replicate(s, out);
    return out;
  }

  /**
   * Gives `gs` a replica in each other Worker that has `s` compiled, in the background: the
   * request decodes on its homes meanwhile, and a replica that comes after its sample ended is freed.
   */
  private replicate(s: StructuredOutput, gs: SequenceGrammar[]): void {
    for (const w of this.pool.workers) {
      const targets = gs.filter((g) => !g.workers.includes(w.index));
      if (targets.length === 0) continue;
      const done = this.pool.replicate(w.index, s, targets.length).then((matchers) => {
        matchers.forEach((m, i) => {
          const g = targets[i]!;
          if (!this.live.has(g) || g.failure !== null || !g.addReplica(w.index, m)) this.pool.release(w.index, [m]);
        });
      }, () => {}); // a Worker that failed meanwhile: its matchers died with it
      this.replicating.add(done);
      void done.finally(() => this.replicating.delete(done));
    }
  }

  /** Resolves once the replicas asked for so far have come (tests, benches: a settled pool). */
  async replicasSettled(): Promise<void> {
    while (this.replicating.size > 0) await Promise.all(this.replicating);
  }

  /** Compiles `s` (or finds it cached) in one Worker without making matchers: the benches' compile time. */
  async compile(s: StructuredOutput): Promise<void> {
    await this.forRequest(s, 0);
  }

  /** Frees a finished sample's matchers (those in a Worker that failed died with it). */
  release(g: SequenceGrammar): void {
    if (!this.live.delete(g)) return;
    this.pool.unload(g.worker);
    for (const [w, m] of g.matchers()) this.pool.release(w, [m]);
  }

  /**
   * Asks the Workers for the masks every live grammar lacks (those that accepted a token since).
   * A state seen before takes its cached mask, and samples in one state share one computation, so
   * only the rest go to the Workers: one round (maskAsks.ts).
   */
  requestMasks(): void {
    this.asks.requestMasks();
  }

  /**
   * Waits until every grammar of `gs` has its mask: asks for the missing ones first. Null when
   * all are here (no await). After maskTimeoutMs each Worker still owing one of these rows is
   * ended: its samples go on in their other replicas, or fail (takeFailures); the promise never rejects.
   */
  masksFor(gs: Iterable<SequenceGrammar>): Promise<void> | null {
    return this.asks.masksFor(gs);
  }

  /** Whether `g`'s next mask would come only after a compile in flight (the engine leaves it out). */
  waitsForWorker(g: SequenceGrammar | undefined): boolean {
    return g !== undefined && this.asks.waitsForCompile(g);
  }

  /** Whether a compile is in flight in some Worker (waitsForWorker can be true). */
  get compiling(): boolean {
    return this.pool.workers.some((w) => w.client !== null && w.client.firstSlow !== Infinity);
  }

  /** Resolves at any Worker's next answer (or failure); at once without a Worker. */
  progress(): Promise<void> {
    return this.pool.nextEvent();
  }

  /**
   * The mask of a sampled row of a sequence constrained by `g` after `outputIds`; null without a
   * grammar. Only a sequence's next token (ahead 0): grammar-constrained sequences do not
   * speculate (EngineCore leaves them out). The mask must have come (masksFor) before the pass
   * is built or finished.
   */
  maskFor(g: SequenceGrammar | undefined, outputIds: readonly number[], ahead: number): Uint32Array | null {
    if (!g) return null;
    if (ahead > 0) throw new Error("a grammar-constrained sequence has a draft row");
    if (!g.inStepWith(outputIds)) g.syncTo(outputIds); // the outputs moved without it (rollback)
    const mask = g.nextMask;
    if (mask === null) throw new GrammarWorkerError("a grammar mask was not computed before the pass finished (await prepareMasks())");
    return mask;
  }

  /** Whether some samples failed since the last call (their requests must fail: SequenceGrammar.failure). */
  takeFailures(): boolean {
    const any = this.failures;
    this.failures = false;
    return any;
  }

  /** Ends the Workers (the engine is destroyed). */
  destroy(): void {
    this.pool.destroy();
  }

  /**
   * TEST ONLY: Worker `index` blocks, as in a long compile, until the returned function is
   * called: now, inside its next create (a compile that is slow), or in its next round once it
   * claimed a row.
   */
  debugHoldWorker(index = 0, at: HoldAt = "now"): () => void {
    const flag = new SharedArrayBuffer(4);
    const view = new Int32Array(flag);
    view[0] = 1;
    this.pool.client(this.pool.workers[index]!).debugHold(flag, at);
    return () => {
      Atomics.store(view, 0, 0);
      Atomics.notify(view, 0);
    };
  }

  /** TEST ONLY: Worker `index` dies of an uncaught error. */
  debugCrashWorker(index = 0): void {
    this.pool.workers[index]?.client?.debugCrash();
  }

  private failSample(g: SequenceGrammar, e: Error): void {
    if (g.failure !== null || !this.live.has(g)) return;
    g.failure = e;
    this.failures = true;
  }
}
