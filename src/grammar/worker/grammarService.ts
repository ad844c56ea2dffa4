/**
 * GrammarService: the grammar Worker's state (grammarWorker.ts runs it behind the message port;
 * tests run it in-process). It owns the compiled-grammar cache (grammarCache.ts) and one XGrammar
 * matcher per constrained sample, by id, and computes next-token masks after bringing a matcher to
 * the engine's accepted ids (protocol.ts). Everything here is synchronous WebAssembly behind async
 * signatures: a compile of a large schema holds this thread, never the engine's.
 *
 *   masks: [k * words] uint32, mask i = sync i's matcher; bit id % 32 of word id / 32 = allowed
 *   round: the rows this Worker claims of a round shared by the pool (maskRound.ts)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GrammarMatcher } from "@mlc-ai/web-xgrammar";
import { GrammarCache } from "../grammarCache";
import type { StructuredOutput } from "../spec";
import { grammarVocab, type GrammarVocab } from "../vocab";
import type { GrammarSource, MatcherSync, RoundShared } from "./protocol";
import { ROW_DONE, ROW_REFUSED, RoundClaims, unpackRowsFor } from "../maskRound";
import { Tokenizer } from "../../tokenizer/tokenizer";

export interface Created {
  matchers: number[];
  /** The compiled grammar came from the cache. */
  hit: boolean;
  compileMs: number;
  /** Keys the cache evicted meanwhile. */
  evicted: string[];
}

/** What a Worker did of a round: rows it computed, and its time syncing matchers and in XGrammar's fill. */
export interface RoundWork {
  computed: number;
  syncMs: number;
  fillMs: number;
}

export interface Masks {
  masks: Uint32Array;
  /** Indices of syncs with a refused id. */
  refused: number[];
  /** Ms bringing matchers up to date (rollback, accept), and in XGrammar's mask fill. */
  syncMs: number;
  fillMs: number;
}

/** The vocabulary of a source: a model's tokenizer is read here, off the engine thread. */
function vocabOf(source: GrammarSource): GrammarVocab {
  if ("vocab" in source) return source.vocab;
  const tokenizer = Tokenizer.fromDir(source.modelDir);
  const json = JSON.parse(readFileSync(join(source.modelDir, "tokenizer.json"), "utf8")) as Record<string, unknown>;
  return grammarVocab(json, source.vocabSize, (id) => tokenizer.idToToken(id));
}

export class GrammarService {
  private readonly matchers = new Map<number, GrammarMatcher>();
  private nextMatcher = 1;
  private evicted: string[] = [];

  private constructor(
    private readonly cache: GrammarCache,
    /** Words of one mask: ceil(vocab / 32). */
    readonly words: number,
  ) {
    cache.onEvict = (key) => this.evicted.push(key);
  }

  static async create(source: GrammarSource, stopTokenIds: number[], cacheSize?: number): Promise<GrammarService> {
    const cache = await GrammarCache.create(vocabOf(source), stopTokenIds, cacheSize);
    return new GrammarService(cache, Math.ceil(cache.vocabSize / 32));
  }

  /**
   * Compiles `spec` (or takes it from the cache) and makes `n` matchers; `onlyCached`: none unless
   * it is cached (replicas are never worth a compile). @throws GrammarError
   */
  async create(spec: StructuredOutput, n: number, onlyCached = false): Promise<Created> {
    if (onlyCached && !this.cache.has(spec)) return { matchers: [], hit: false, compileMs: 0, evicted: [] };
    const { hits, compileMs } = this.cache.stats;
    const compiled = await this.cache.get(spec);
    const out: Created = { matchers: [], hit: this.cache.stats.hits > hits, compileMs: this.cache.stats.compileMs - compileMs, evicted: this.evicted };
    this.evicted = [];
    for (let i = 0; i < n; i++) {
      const id = this.nextMatcher++;
      this.matchers.set(id, await GrammarMatcher.createGrammarMatcher(compiled));
      out.matchers.push(id);
    }
    return out;
  }

  /** Applies each sync to its matcher and computes its next mask. */
  async masks(syncs: readonly MatcherSync[]): Promise<Masks> {
    const masks = new Uint32Array(syncs.length * this.words);
    const refused: number[] = [];
    const timing = { syncMs: 0, fillMs: 0 };
    for (let i = 0; i < syncs.length; i++) if (!(await this.maskInto(syncs[i]!, masks, i * this.words, timing))) refused.push(i);
    return { masks, refused, ...timing };
  }

  /**
   * Worker `worker`'s share of a round (maskRound.ts): the rows where its replica is the nearest,
   * in order, then any other row it holds a replica of, from the last (where the nearest Worker
   * comes latest), each claimed before it is computed.
   */
  async round(packed: Int32Array, shared: RoundShared, worker: number, claimed: () => void = () => {}): Promise<RoundWork> {
    if (shared.words !== this.words) throw new Error(`grammar worker: a round of ${shared.words}-word masks for a ${this.words}-word vocabulary`);
    const rows = unpackRowsFor(packed, worker);
    const claims = new RoundClaims(shared);
    const work: RoundWork = { computed: 0, syncMs: 0, fillMs: 0 };
    const run = async (r: number) => {
      const sync = rows[r]!.sync;
      if (sync === null || !claims.claim(r, worker)) return;
      claimed(); // TEST ONLY: a hold there (debug-hold "round")
      const ok = await this.maskInto(sync, claims.masks, r * this.words, work);
      work.computed++;
      claims.finish(r, ok ? ROW_DONE : ROW_REFUSED);
    };
    for (let r = 0; r < rows.length; r++) if (rows[r]!.nearest) await run(r);
    for (let r = rows.length - 1; r >= 0; r--) if (!rows[r]!.nearest) await run(r);
    return work;
  }

  /** Brings a matcher to its sync's state and writes its next mask at `out[at..]`; false: an id was refused. */
  private async maskInto(sync: MatcherSync, out: Uint32Array, at: number, timing: { syncMs: number; fillMs: number }): Promise<boolean> {
    const matcher = this.matchers.get(sync.matcher);
    if (matcher === undefined) throw new Error(`grammar worker: no matcher ${sync.matcher}`);
    const t0 = performance.now();
    if (sync.rollback > 0) matcher.rollBack(sync.rollback);
    const ok = sync.accept.every((t) => matcher.acceptToken(t));
    const t1 = performance.now();
    timing.syncMs += t1 - t0;
    if (!ok) return false;
    const m = await matcher.getNextTokenBitmask();
    timing.fillMs += performance.now() - t1;
    out.set(new Uint32Array(m.buffer, m.byteOffset, this.words), at);
    return true;
  }

  release(ids: readonly number[]): void {
    for (const id of ids) {
      this.matchers.get(id)?.dispose();
      this.matchers.delete(id);
    }
  }

  /** Live matchers (tests). */
  get numMatchers(): number {
    return this.matchers.size;
  }

  dispose(): void {
    this.release([...this.matchers.keys()]);
    this.cache.dispose();
  }
}
