/**
 * EngineGrammars: the grammar side of one EngineCore, on the engine thread. XGrammar itself runs
 * in a pool of grammar Workers (grammarPool.ts; grammarClient.ts, worker/): they compile a
 * request's constraint (cached by key, per Worker) into one matcher per sample, each sample's in
 * one Worker, and compute masks; nothing here blocks on them. This side keeps one SequenceGrammar
 * per sample (accepted ids, next mask), the mask cache (a state seen before needs no Worker), and
 * asks the Workers for the masks of the next pass while the current one runs:
 *
 *   requestMasks   once a pass is launched (and, overlapSteps off, when the one before was
 *                  applied): the states no cached or shared mask serves, split by Worker, one
 *                  message (an "ask") to each Worker at once, so K threads compute them together
 *   masksFor       what a pass waits for before its finish: every ask its rows need, at most
 *                  maskTimeoutMs; then each Worker still owing an answer is taken for stuck: it is
 *                  ended and its samples fail
 *   waitsForWorker a sample whose mask would come only after a compile in flight in its own
 *                  Worker: the engine leaves it out of the pass (the others, and the samples of
 *                  the other Workers, decode on)
 *
 * The Workers start on the first constrained request, so an engine that never sees one pays
 * nothing. If one dies, its samples fail (takeFailures) and the next request starts a new one.
 * A compile past compileTimeoutMs ends its Worker the same way, and its requests get a 400
 * (GrammarCompileTimeoutError: grammarClient.ts).
 */
import type { GrammarClient, MasksReply } from "./grammarClient";
import { GrammarError, GrammarWorkerError } from "./grammarErrors";
import type { GrammarMetrics } from "./grammarMetrics";
import { GrammarPool, defaultGrammarWorkers } from "./grammarPool";
import { MaskCache, type GrammarRef } from "./maskCache";
import { SequenceGrammar } from "./sequenceGrammar";
import type { StructuredOutput } from "./spec";
import { checkStructuredOutput } from "./spec";
import type { GrammarSource } from "./worker/protocol";

export { GrammarCompileTimeoutError, GrammarError, GrammarWorkerError } from "./grammarErrors";
export { DEFAULT_COMPILE_TIMEOUT_MS } from "./grammarClient";
export { defaultGrammarWorkers } from "./grammarPool";

/** How long a pass waits for its masks (a mask takes microseconds; a pass never waits for a compile). */
export const DEFAULT_MASK_TIMEOUT_MS = 10_000;

/** What EngineGrammars reads of the model: its directory (the Workers load its tokenizer), vocab and stop ids. */
export interface GrammarModel {
  modelDir: string;
  vocabSize: number;
  eosTokenIds: readonly number[];
}

export interface EngineGrammarsOptions {
  /** Grammar Workers; 0 or absent: defaultGrammarWorkers(cores, gpu) (grammarPool.ts). */
  workers?: number;
  /** The forward runs on a GPU (the default pool is larger: the cores are free for masks). */
  gpu?: boolean;
  /** The Workers' vocabulary when not the model's tokenizer (benches, tests). */
  source?: GrammarSource;
  /** Deadline of one compile (DEFAULT_COMPILE_TIMEOUT_MS when absent). */
  compileTimeoutMs?: number;
}

/** One masks message in flight: the Worker it went to, its id there, and its settling. */
interface Ask {
  client: GrammarClient;
  clientId: number;
  done: Promise<void>;
}

/** A pass's mask requests for one Worker: leaders (one per state) and the samples sharing their states. */
interface WorkerAsk {
  leaders: SequenceGrammar[];
  keys: (string | null)[];
  /** (sample, index of its leader) */
  followers: [SequenceGrammar, number][];
  byKey: Map<GrammarRef, Map<string, number>>;
}

export class EngineGrammars {
  private readonly pool: GrammarPool;
  /** Live grammars (one per constrained sample). */
  private readonly live = new Set<SequenceGrammar>();
  /** Asks in flight, by id (ids count across Workers). */
  private readonly inFlight = new Map<number, Ask>();
  private nextAsk = 1;
  private readonly stopIds: ReadonlySet<number>;
  private failures = false;

  /** Masks by exact matcher state, shared by samples in that state (maskCache.ts). */
  readonly maskCache = new MaskCache();
  /**
   * Masks: engine-thread ms handling them (maskMs), ms passes waited for the Workers (waitMs), the
   * Workers' ms computing them (workerMs: summed over Workers; busiestMs: the busiest Worker's
   * per ask round, what a pass can wait for); masks handed out, and those XGrammar computed.
   */
  readonly timing = { maskMs: 0, waitMs: 0, workerMs: 0, busiestMs: 0, masks: 0, computed: 0 };
  maskTimeoutMs = DEFAULT_MASK_TIMEOUT_MS;
  /** Per requestMasks round: the largest Worker ms reported so far (for busiestMs). */
  private roundMs = new Map<number, number>();

  constructor(model: GrammarModel, options: EngineGrammarsOptions = {}) {
    this.stopIds = new Set(model.eosTokenIds);
    const source = options.source ?? { modelDir: model.modelDir, vocabSize: model.vocabSize };
    this.pool = new GrammarPool(options.workers || defaultGrammarWorkers(undefined, options.gpu), source, model.eosTokenIds, options.compileTimeoutMs);
    this.pool.onFailure = (w, e) => {
      for (const g of this.live) if (g.worker === w.index) this.failSample(g, e);
    };
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
    return out;
  }

  /** Compiles `s` (or finds it cached) in one Worker without making matchers: the benches' compile time. */
  async compile(s: StructuredOutput): Promise<void> {
    await this.forRequest(s, 0);
  }

  /** Frees a finished sample's matcher. */
  release(g: SequenceGrammar): void {
    if (!this.live.delete(g)) return;
    this.pool.unload(g.worker);
    if (g.failure === null) this.pool.release(g.worker, [g.matcher]);
  }

  /**
   * Asks the Workers for the masks every live grammar lacks (those that accepted a token since).
   * A state seen before takes its cached mask, and samples of one Worker in one state share one
   * computation, so only the rest go to the Workers: one message to each Worker with some.
   */
  requestMasks(): void {
    if (this.live.size === 0 || !this.pool.started) return;
    const t0 = performance.now();
    let byWorker: Map<number, WorkerAsk> | null = null;
    let taken = 0;
    for (const g of this.live) {
      if (g.hasMask || g.requested !== null || g.broken || g.failure || g.isTerminated) continue;
      const key = MaskCache.keyOf(g.acceptedIds);
      if (key !== null) {
        const cached = this.maskCache.get(g.grammar, key);
        if (cached !== undefined) {
          g.useMask(cached);
          taken++;
          continue;
        }
      }
      byWorker ??= new Map();
      let ask = byWorker.get(g.worker);
      if (ask === undefined) byWorker.set(g.worker, (ask = { leaders: [], keys: [], followers: [], byKey: new Map() }));
      if (key !== null) {
        let inGrammar = ask.byKey.get(g.grammar);
        if (inGrammar === undefined) ask.byKey.set(g.grammar, (inGrammar = new Map()));
        const leader = inGrammar.get(key);
        if (leader !== undefined) {
          ask.followers.push([g, leader]);
          continue;
        }
        inGrammar.set(key, ask.leaders.length);
      }
      ask.leaders.push(g);
      ask.keys.push(key);
    }
    this.timing.masks += taken;
    if (byWorker !== null) {
      const round = this.nextAsk;
      for (const [index, ask] of byWorker) this.send(index, ask, round);
    }
    this.timing.maskMs += performance.now() - t0;
  }

  /** Sends one Worker its part of a round of mask requests. */
  private send(index: number, ask: WorkerAsk, round: number): void {
    const { leaders, keys, followers } = ask;
    const client = this.pool.workers[index]!.client;
    if (client === null) {
      // Its Worker failed: these samples failed with it (pool.onFailure).
      for (const g of [...leaders, ...followers.map(([g]) => g)]) this.failSample(g, new GrammarWorkerError("the grammar worker is gone"));
      return;
    }
    const id = this.nextAsk++;
    const { id: clientId, reply } = client.masks(leaders.map((g) => g.takeSync()));
    for (const g of leaders) g.requested = id;
    for (const [g] of followers) g.requested = id;
    const done = reply.then(
      (m) => this.receive(id, m, leaders, keys, followers, round),
      (e: Error) => {
        for (const g of leaders) this.failSample(g, e);
        for (const [g] of followers) this.failSample(g, e);
      },
    ).finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, { client, clientId, done });
  }

  /** Hands a masks answer to the samples that asked for it (and those sharing their states). */
  private receive(id: number, m: MasksReply, asked: SequenceGrammar[], keys: (string | null)[], sharing: [SequenceGrammar, number][], round: number): void {
    const t0 = performance.now();
    const words = m.masks.length / Math.max(asked.length, 1);
    // Views of the one transferred buffer; a cached mask is copied out, so the cache never pins
    // a whole answer (up to 4 MB at batch 256 and 128K vocab) for one mask.
    const masks = asked.map((_, i) => {
      const view = m.masks.subarray(i * words, (i + 1) * words);
      return keys[i] === null ? view : view.slice();
    });
    const refused = new Set(m.refused);
    for (let i = 0; i < asked.length; i++) {
      const g = asked[i]!;
      if (refused.has(i)) {
        this.failSample(g, new GrammarWorkerError(`the grammar matcher refused a token its mask allowed (after ${g.numAccepted} tokens)`));
        continue;
      }
      if (keys[i] !== null) this.maskCache.set(g.grammar, keys[i]!, masks[i]!);
      if (g.requested === id) g.useMask(masks[i]!);
    }
    for (const [g, leader] of sharing) {
      if (refused.has(leader)) this.failSample(g, new GrammarWorkerError("the grammar matcher refused a token its mask allowed"));
      else if (g.requested === id) g.useMask(masks[leader]!);
    }
    this.timing.computed += asked.length - refused.size;
    this.timing.masks += asked.length - refused.size + sharing.length;
    this.timing.workerMs += m.ms;
    // The busiest Worker of a round: what the round costs in wall time on K threads.
    const before = this.roundMs.get(round) ?? 0;
    if (m.ms > before) {
      this.timing.busiestMs += m.ms - before;
      this.roundMs.set(round, m.ms);
    }
    if (this.roundMs.size > 64) this.roundMs.delete(this.roundMs.keys().next().value!);
    this.timing.maskMs += performance.now() - t0;
  }

  /**
   * Waits until every grammar of `gs` has its mask: asks for the missing ones first. Null when
   * all are here (no await). After maskTimeoutMs each Worker still owing one of these answers is
   * ended and its samples fail (takeFailures); the promise never rejects.
   */
  masksFor(gs: Iterable<SequenceGrammar>): Promise<void> | null {
    this.requestMasks();
    let waits: Map<number, Ask> | null = null;
    for (const g of gs) {
      if (g.hasMask || g.failure || g.requested === null) continue;
      const a = this.inFlight.get(g.requested);
      if (a !== undefined) (waits ??= new Map()).set(g.requested, a);
    }
    if (waits === null) return null;
    const asks = [...waits];
    const all = Promise.all(asks.map(([, a]) => a.done)).then(() => {});
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const [id, a] of asks) {
          if (this.inFlight.has(id)) a.client.fail(new GrammarWorkerError(`the grammar worker computed no masks in ${this.maskTimeoutMs} ms`));
        }
        resolve();
      }, this.maskTimeoutMs);
    });
    return Promise.race([all, timeout]).finally(() => {
      clearTimeout(timer);
      this.timing.waitMs += performance.now() - t0;
    });
  }

  /** Whether `g`'s next mask would come only after a compile in flight in its Worker (the engine leaves it out). */
  waitsForWorker(g: SequenceGrammar | undefined): boolean {
    if (g === undefined || g.hasMask || g.failure) return false;
    if (g.requested !== null) {
      const a = this.inFlight.get(g.requested);
      return a !== undefined && a.clientId > a.client.firstSlow;
    }
    const client = this.pool.workers[g.worker]?.client ?? null;
    return client !== null && client.firstSlow !== Infinity;
  }

  /** Whether a compile is in flight in some Worker (waitsForWorker can be true). */
  get compiling(): boolean {
    return this.pool.workers.some((w) => w.client !== null && w.client.firstSlow !== Infinity);
  }

  /** Resolves at any Worker's next answer (or failure); at once without a Worker. */
  progress(): Promise<void> {
    const events: Promise<void>[] = [];
    for (const w of this.pool.workers) if (w.client !== null) events.push(w.client.nextEvent());
    return events.length === 0 ? Promise.resolve() : Promise.race(events);
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
   * called: now, or with `inCompile` inside its next create (a compile that is slow).
   */
  debugHoldWorker(index = 0, inCompile = false): () => void {
    const flag = new SharedArrayBuffer(4);
    const view = new Int32Array(flag);
    view[0] = 1;
    this.pool.client(this.pool.workers[index]!).debugHold(flag, inCompile);
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
