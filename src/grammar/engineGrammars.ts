/**
 * EngineGrammars: the grammar side of one EngineCore, on the engine thread. XGrammar itself runs
 * in a grammar Worker (grammarClient.ts, worker/): it compiles a request's constraint (cached by
 * key) into one matcher per sample and computes masks; nothing here blocks on it. This side keeps
 * one SequenceGrammar per sample (accepted ids, next mask), the mask cache (a state seen before
 * needs no Worker), and asks the Worker for the masks of the next pass while the current one runs:
 *
 *   requestMasks   once a pass is launched (and, overlapSteps off, when the one before was
 *                  applied): one message with the states no cached or shared mask serves
 *   masksFor       what a pass waits for before its finish, at most maskTimeoutMs; then the
 *                  Worker is taken for stuck: it is ended and its samples fail
 *   waitsForWorker a sample whose mask would come only after a compile in flight: the engine
 *                  leaves it out of the pass (the others decode on)
 *
 * The Worker starts on the first constrained request, so an engine that never sees one pays
 * nothing. If it dies, its samples fail (takeFailures) and the next request starts a new one.
 */
import { GrammarClient, type MasksReply } from "./grammarClient";
import { GrammarError, GrammarWorkerError } from "./grammarErrors";
import { MaskCache, type GrammarRef } from "./maskCache";
import { SequenceGrammar } from "./sequenceGrammar";
import type { StructuredOutput } from "./spec";
import { checkStructuredOutput, grammarKey } from "./spec";
import type { GrammarSource } from "./worker/protocol";

export { GrammarError, GrammarWorkerError } from "./grammarErrors";

/** How long a pass waits for its masks (a mask takes microseconds; a pass never waits for a compile). */
export const DEFAULT_MASK_TIMEOUT_MS = 10_000;

/** What EngineGrammars reads of the model: its directory (the Worker loads its tokenizer), vocab and stop ids. */
export interface GrammarModel {
  modelDir: string;
  vocabSize: number;
  eosTokenIds: readonly number[];
}

export class EngineGrammars {
  private client: GrammarClient | null = null;
  /** Grammars compiled in the current Worker, by key (its cache reports what it evicts). */
  private readonly compiled = new Map<string, GrammarRef>();
  /** Live grammars (one per constrained sample). */
  private readonly live = new Set<SequenceGrammar>();
  /** Masks messages in flight, by id. */
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly stopIds: ReadonlySet<number>;
  private failures = false;

  /** Masks by exact matcher state, shared by samples in that state (maskCache.ts). */
  readonly maskCache = new MaskCache();
  /**
   * Masks: engine-thread ms handling them (maskMs), ms passes waited for the Worker (waitMs), the
   * Worker's ms computing them (workerMs); masks handed out, and those XGrammar computed.
   */
  readonly timing = { maskMs: 0, waitMs: 0, workerMs: 0, masks: 0, computed: 0 };
  /** Compiles and cache hits (as the Worker reports them), Workers started, the last one's start-up ms. */
  readonly stats = { compiles: 0, hits: 0, compileMs: 0, workers: 0, tokenizerInfoMs: 0 };
  maskTimeoutMs = DEFAULT_MASK_TIMEOUT_MS;

  /** `source`: the Worker's vocabulary when not the model's tokenizer (benches, tests). */
  constructor(
    private readonly model: GrammarModel,
    private readonly source: GrammarSource = { modelDir: model.modelDir, vocabSize: model.vocabSize },
  ) {
    this.stopIds = new Set(model.eosTokenIds);
  }

  /** True while some sequence decodes under a grammar. */
  get active(): boolean {
    return this.live.size > 0;
  }

  /** Whether a grammar Worker is running. */
  get started(): boolean {
    return this.client !== null;
  }

  /** Starts the Worker if none runs and waits until it can compile. @throws GrammarWorkerError */
  async ready(): Promise<void> {
    await this.worker().ready;
  }

  /** One grammar per sample of a request constrained by `s`. @throws GrammarError, GrammarWorkerError */
  async forRequest(s: StructuredOutput, n: number): Promise<SequenceGrammar[]> {
    const bad = checkStructuredOutput(s);
    if (bad) throw new GrammarError(bad);
    const key = grammarKey(s);
    const client = this.worker();
    const created = await client.create(s, n, !this.compiled.has(key));
    if (client !== this.client) {
      client.release(created.matchers);
      throw client.failure ?? new GrammarWorkerError("the grammar worker was replaced");
    }
    for (const k of created.evicted) this.compiled.delete(k);
    if (created.hit) this.stats.hits++;
    else this.stats.compiles++;
    this.stats.compileMs += created.compileMs;
    let ref = this.compiled.get(key);
    if (ref === undefined) this.compiled.set(key, (ref = { key }));
    const out = created.matchers.map((m) => new SequenceGrammar(m, ref, this.stopIds));
    for (const g of out) this.live.add(g);
    return out;
  }

  /** Compiles `s` (or finds it cached) without making matchers: the benches' compile time. */
  async compile(s: StructuredOutput): Promise<void> {
    await this.forRequest(s, 0);
  }

  /** Frees a finished sample's matcher. */
  release(g: SequenceGrammar): void {
    if (!this.live.delete(g)) return;
    if (g.failure === null) this.client?.release([g.matcher]);
  }

  /**
   * Asks the Worker for the masks every live grammar lacks (those that accepted a token since).
   * A state seen before takes its cached mask, and samples in one state share one computation,
   * so only the rest go to the Worker, in one message.
   */
  requestMasks(): void {
    const client = this.client;
    if (client === null || this.live.size === 0) return;
    const t0 = performance.now();
    let leaders: SequenceGrammar[] | null = null;
    let keys: (string | null)[] | null = null;
    let followers: [SequenceGrammar, number][] | null = null; // (sample, index of its leader)
    let byKey: Map<GrammarRef, Map<string, number>> | null = null;
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
        byKey ??= new Map();
        let inGrammar = byKey.get(g.grammar);
        if (inGrammar === undefined) byKey.set(g.grammar, (inGrammar = new Map()));
        const leader = inGrammar.get(key);
        if (leader !== undefined) {
          (followers ??= []).push([g, leader]);
          continue;
        }
        inGrammar.set(key, leaders?.length ?? 0);
      }
      (leaders ??= []).push(g);
      (keys ??= []).push(key);
    }
    this.timing.masks += taken;
    if (leaders !== null) {
      const asked = leaders, sharing = followers, stateKeys = keys!;
      const { id, reply } = client.masks(asked.map((g) => g.takeSync()));
      for (const g of asked) g.requested = id;
      if (sharing) for (const [g] of sharing) g.requested = id;
      const done = reply.then(
        (m) => this.receive(id, m, asked, stateKeys, sharing),
        (e: Error) => {
          for (const g of asked) this.failSample(g, e);
          if (sharing) for (const [g] of sharing) this.failSample(g, e);
        },
      ).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, done);
    }
    this.timing.maskMs += performance.now() - t0;
  }

  /** Hands a masks answer to the samples that asked for it (and those sharing their states). */
  private receive(id: number, m: MasksReply, asked: SequenceGrammar[], keys: (string | null)[], sharing: [SequenceGrammar, number][] | null): void {
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
    if (sharing) {
      for (const [g, leader] of sharing) {
        if (refused.has(leader)) this.failSample(g, new GrammarWorkerError("the grammar matcher refused a token its mask allowed"));
        else if (g.requested === id) g.useMask(masks[leader]!);
      }
    }
    this.timing.computed += asked.length - refused.size;
    this.timing.masks += asked.length - refused.size + (sharing?.length ?? 0);
    this.timing.workerMs += m.ms;
    this.timing.maskMs += performance.now() - t0;
  }

  /**
   * Waits until every grammar of `gs` has its mask: asks for the missing ones first. Null when
   * all are here (no await). After maskTimeoutMs the Worker is ended and the samples waiting fail
   * (takeFailures); the promise never rejects.
   */
  masksFor(gs: Iterable<SequenceGrammar>): Promise<void> | null {
    this.requestMasks();
    let waits: Set<Promise<void>> | null = null;
    for (const g of gs) {
      if (g.hasMask || g.failure || g.requested === null) continue;
      const w = this.inFlight.get(g.requested);
      if (w !== undefined) (waits ??= new Set()).add(w);
    }
    if (waits === null) return null;
    const all = Promise.all(waits).then(() => {});
    const client = this.client;
    if (client === null) return all; // failed just now: the answers are settling
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        client.fail(new GrammarWorkerError(`the grammar worker computed no masks in ${this.maskTimeoutMs} ms`));
        resolve();
      }, this.maskTimeoutMs);
    });
    return Promise.race([all, timeout]).finally(() => {
      clearTimeout(timer);
      this.timing.waitMs += performance.now() - t0;
    });
  }

  /** Whether `g`'s next mask would come only after a compile in flight (the engine leaves it out). */
  waitsForWorker(g: SequenceGrammar | undefined): boolean {
    if (g === undefined || g.hasMask || g.failure || this.client === null) return false;
    const first = this.client.firstSlow;
    return g.requested === null ? first !== Infinity : g.requested > first;
  }

  /** Whether a compile is in flight (waitsForWorker can be true). */
  get compiling(): boolean {
    return this.client !== null && this.client.firstSlow !== Infinity;
  }

  /** Resolves at the Worker's next answer (or failure); at once without a Worker. */
  progress(): Promise<void> {
    return this.client?.nextEvent() ?? Promise.resolve();
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

  /** Ends the Worker (the engine is destroyed). */
  destroy(): void {
    this.client?.terminate();
  }

  /** TEST ONLY: the Worker blocks, as in a long compile, until the returned function is called. */
  debugHoldWorker(): () => void {
    const flag = new SharedArrayBuffer(4);
    const view = new Int32Array(flag);
    view[0] = 1;
    this.worker().debugHold(flag);
    return () => {
      Atomics.store(view, 0, 0);
      Atomics.notify(view, 0);
    };
  }

  /** TEST ONLY: the Worker dies of an uncaught error. */
  debugCrashWorker(): void {
    this.client?.debugCrash();
  }

  /** The running Worker, started now if there is none (or the last one failed). */
  private worker(): GrammarClient {
    if (this.client !== null) return this.client;
    const client = new GrammarClient(this.source, [...this.model.eosTokenIds]);
    this.client = client;
    this.compiled.clear();
    this.stats.workers++;
    client.ready.then((m) => (this.stats.tokenizerInfoMs = m.tokenizerInfoMs), () => {});
    client.onFailure = (e) => {
      if (this.client === client) this.client = null;
      for (const g of this.live) this.failSample(g, e);
    };
    return client;
  }

  private failSample(g: SequenceGrammar, e: Error): void {
    if (g.failure !== null || !this.live.has(g)) return;
    g.failure = e;
    this.failures = true;
  }
}
