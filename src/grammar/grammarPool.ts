/**
 * GrammarPool: the K grammar Workers of one engine (a GrammarClient each, each with its own
 * XGrammar: compiler, compiled-grammar cache, matchers), so the masks of a pass are computed on K
 * threads at once (EngineGrammars splits a pass's requests by Worker). This file is the creating
 * side: where a sample's matcher lives, what each Worker has compiled, starting and replacing them.
 *
 *   placement  each sample goes to the least-loaded Worker (fewest live samples), one that has
 *              the grammar compiled (or compiling) winning a tie, so n samples of one request
 *              spread over the Workers and a pass's mask work splits evenly
 *   compiles   a grammar is compiled in each Worker that gets samples of it, in parallel, once
 *              per Worker (its compiled cache); while one Worker compiles, the others serve masks
 *   refs       one GrammarRef per key on the engine thread, shared by every Worker (a schema
 *              compiles to the same grammar in each), so the mask cache serves a state whichever
 *              Worker's sample met it first; a key's ref is dropped once no Worker holds it
 *   lifecycle  all K start on the first constrained request; one that fails (crash, start
 *              failure, mask timeout, a compile past its deadline) fails only its own samples
 *              (onFailure) and is replaced on the next request
 */
import { availableParallelism } from "node:os";
import { GrammarClient } from "./grammarClient";
import { GrammarError, GrammarWorkerError } from "./grammarErrors";
import type { GrammarRef } from "./maskCache";
import type { StructuredOutput } from "./spec";
import { grammarKey } from "./spec";
import type { GrammarSource } from "./worker/protocol";

/**
 * Grammar Workers when EngineOptions.grammarWorkers is 0. With the forward on a GPU: half the
 * host's cores, 1 to 8; on the CPU backend, whose forward needs the cores itself: a quarter, 1 to 4
 * (a 2-core machine gets 1). The rest stays with what shares the cores: the engine thread, the
 * tokenizer Worker, the HTTP side, other replicas' engines (each with its own pool). Measured on
 * the H100 7B shape, batch 64 (16 vCPUs, bench/results/device-wave13-h100.md): the grammar's loss of
 * tokens/s was 40 / 20 / 11.5% at K = 1 / 2 / 4, 5.4-10% at 8, and 23-25% at 12 and 16 (each
 * Worker's masks get slower once Workers outnumber the physical cores, and the busiest Worker is
 * what a pass waits for).
 */
export function defaultGrammarWorkers(cores = availableParallelism(), gpu = false): number {
  return gpu ? Math.min(8, Math.max(1, Math.floor(cores / 2))) : Math.min(4, Math.max(1, Math.floor(cores / 4)));
}

/** One slot of the pool: its running Worker (null until started, or after it failed) and what the engine knows of it. */
export class PoolWorker {
  client: GrammarClient | null = null;
  /** Keys of the grammars compiled in the running Worker (its cache reports what it evicts). */
  readonly compiled = new Set<string>();
  /** Keys being compiled there now. */
  readonly compiling = new Map<string, number>();
  /** Live samples whose matcher is here, and those being created. */
  load = 0;
  /** Workers started in this slot (the first, then one per replacement). */
  starts = 0;
  constructor(readonly index: number) {}
}

/** The matchers of a request's samples: where each lives, and the grammar they run. */
export interface PoolCreated {
  ref: GrammarRef;
  matchers: { worker: number; matcher: number }[];
}

export class GrammarPool {
  readonly workers: PoolWorker[];
  private readonly refs = new Map<string, GrammarRef>();
  /**
   * Compiles and cache hits (as the Workers report them), compiles ended at their deadline,
   * Workers started (restarts: those replacing a failed one), the last one's start-up ms.
   */
  readonly stats = { compiles: 0, hits: 0, compileMs: 0, compileTimeouts: 0, workers: 0, restarts: 0, tokenizerInfoMs: 0 };
  /** Called once per failed Worker (its samples must fail). */
  onFailure: (w: PoolWorker, e: GrammarWorkerError) => void = () => {};

  constructor(
    size: number,
    private readonly source: GrammarSource,
    private readonly stopTokenIds: readonly number[],
    /** Deadline of one compile in a Worker (GrammarClient). */
    private readonly compileTimeoutMs?: number,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`grammar workers must be an integer >= 1, got ${size}`);
    this.workers = Array.from({ length: size }, (_, i) => new PoolWorker(i));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Whether some Worker is running. */
  get started(): boolean {
    return this.workers.some((w) => w.client !== null);
  }

  /** Starts every Worker not running and waits until all can compile. @throws GrammarWorkerError */
  async ready(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.client(w).ready));
  }

  /**
   * Makes `n` matchers of `s`, spread over the Workers (placement, at the top); n = 0 compiles it
   * in one Worker (the benches' compile time). @throws GrammarError, GrammarWorkerError
   */
  async create(s: StructuredOutput, n: number): Promise<PoolCreated> {
    const key = grammarKey(s);
    for (const w of this.workers) this.client(w);
    const targets = [...this.place(key, n)];
    for (const [w, c] of targets) w.load += c;
    const results = await Promise.allSettled(targets.map(([w, c]) => this.createOn(w, s, key, c)));
    // A constraint's own error (a compile past its deadline in one Worker) names the request's fault.
    const rejected = results.filter((r) => r.status === "rejected");
    const failed = rejected.find((r) => r.reason instanceof GrammarError) ?? rejected[0];
    if (failed) {
      targets.forEach(([w, c], i) => {
        w.load -= c;
        const r = results[i]!;
        if (r.status === "fulfilled") this.release(w.index, r.value);
      });
      throw failed.reason;
    }
    let ref = this.refs.get(key);
    if (ref === undefined) this.refs.set(key, (ref = { key }));
    const matchers: PoolCreated["matchers"] = [];
    targets.forEach(([w], i) => {
      for (const m of (results[i] as PromiseFulfilledResult<number[]>).value) matchers.push({ worker: w.index, matcher: m });
    });
    return { ref, matchers };
  }

  /** Frees matchers of Worker `index` (nothing if it was replaced since: they died with it). */
  release(index: number, matchers: number[]): void {
    this.workers[index]!.client?.release(matchers);
  }

  /** A sample of Worker `index` ended (its matcher released or dead). */
  unload(index: number): void {
    this.workers[index]!.load--;
  }

  /** Ends every Worker (the engine is destroyed). */
  destroy(): void {
    for (const w of this.workers) w.client?.terminate();
  }

  /** Worker `w`'s running client, started now if there is none (or the last one failed). */
  client(w: PoolWorker): GrammarClient {
    if (w.client !== null) return w.client;
    const client = new GrammarClient(this.source, [...this.stopTokenIds], { compileTimeoutMs: this.compileTimeoutMs });
    w.client = client;
    this.stats.workers++;
    if (w.starts++ > 0) this.stats.restarts++;
    client.ready.then((m) => (this.stats.tokenizerInfoMs = m.tokenizerInfoMs), () => {});
    client.onFailure = (e) => {
      if (w.client !== client) return;
      w.client = null;
      if (client.compileTimedOut) this.stats.compileTimeouts++;
      const keys = [...w.compiled];
      w.compiled.clear();
      w.compiling.clear();
      for (const k of keys) this.prune(k);
      this.onFailure(w, e);
    };
    return client;
  }

  /** How many of `n` samples go to which Worker; n = 0: one Worker, to compile in. */
  private place(key: string, n: number): Map<PoolWorker, number> {
    const counts = new Map<PoolWorker, number>();
    const has = (w: PoolWorker) => w.compiled.has(key) || w.compiling.has(key);
    for (let i = 0; i < Math.max(n, 1); i++) {
      let best: PoolWorker | null = null;
      for (const w of this.workers) {
        if (best === null) {
          best = w;
          continue;
        }
        const load = w.load + (counts.get(w) ?? 0), bestLoad = best.load + (counts.get(best) ?? 0);
        if (load < bestLoad || (load === bestLoad && has(w) && !has(best))) best = w;
      }
      counts.set(best!, (counts.get(best!) ?? 0) + (n > 0 ? 1 : 0));
    }
    return counts;
  }

  /**
   * Makes `n` matchers of `s` in Worker `w` (compiling it there if it is new to it). A request
   * that waited behind another schema's compile which ran past its deadline (the Worker was ended
   * for that one, not for this) is tried once more on the Worker that replaces it.
   */
  private async createOn(w: PoolWorker, s: StructuredOutput, key: string, n: number, retried = false): Promise<number[]> {
    const client = this.client(w);
    const slow = !w.compiled.has(key);
    if (slow) w.compiling.set(key, (w.compiling.get(key) ?? 0) + 1);
    try {
      const created = await client.create(s, n, slow).catch((e: unknown) => {
        if (retried || e instanceof GrammarError || !client.compileTimedOut) throw e;
        return null; // another schema's compile ended this Worker: retried below
      });
      if (created === null) return await this.createOn(w, s, key, n, true);
      if (client !== w.client) {
        client.release(created.matchers);
        throw client.failure ?? new GrammarWorkerError("the grammar worker was replaced");
      }
      for (const k of created.evicted) {
        w.compiled.delete(k);
        this.prune(k);
      }
      w.compiled.add(key);
      if (created.hit) this.stats.hits++;
      else this.stats.compiles++;
      this.stats.compileMs += created.compileMs;
      return created.matchers;
    } finally {
      if (slow && w.client === client) {
        const left = (w.compiling.get(key) ?? 1) - 1;
        if (left > 0) w.compiling.set(key, left);
        else w.compiling.delete(key);
      }
    }
  }

  /** Drops the ref of `key` once no Worker holds it compiled (its cached masks go with it). */
  private prune(key: string): void {
    if (!this.workers.some((w) => w.compiled.has(key))) this.refs.delete(key);
  }
}
