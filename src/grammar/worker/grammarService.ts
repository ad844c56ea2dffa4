/**
 * GrammarService: the grammar Worker's state (grammarWorker.ts runs it behind the message port;
 * tests run it in-process). It owns the compiled-grammar cache (grammarCache.ts) and one XGrammar
 * matcher per constrained sample, by id, and computes next-token masks after bringing a matcher to
 * the engine's accepted ids (protocol.ts). Everything here is synchronous WebAssembly behind async
 * signatures: a compile of a large schema holds this thread, never the engine's.
 *
 *   masks: [k * words] uint32, mask i = sync i's matcher; bit id % 32 of word id / 32 = allowed
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GrammarMatcher } from "@mlc-ai/web-xgrammar";
import { GrammarCache } from "../grammarCache";
import type { StructuredOutput } from "../spec";
import { grammarVocab, type GrammarVocab } from "../vocab";
import type { GrammarSource, MatcherSync } from "./protocol";
import { Tokenizer } from "../../tokenizer/tokenizer";

export interface Created {
  matchers: number[];
  /** The compiled grammar came from the cache. */
  hit: boolean;
  compileMs: number;
  /** Keys the cache evicted meanwhile. */
  evicted: string[];
}

export interface Masks {
  masks: Uint32Array;
  /** Indices of syncs with a refused id. */
  refused: number[];
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

  /** Compiles `spec` (or takes it from the cache) and makes `n` matchers. @throws GrammarError */
  async create(spec: StructuredOutput, n: number): Promise<Created> {
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
    const words = this.words;
    const masks = new Uint32Array(syncs.length * words);
    const refused: number[] = [];
    for (let i = 0; i < syncs.length; i++) {
      const { matcher: id, rollback, accept } = syncs[i]!;
      const matcher = this.matchers.get(id);
      if (matcher === undefined) throw new Error(`grammar worker: no matcher ${id}`);
      if (rollback > 0) matcher.rollBack(rollback);
      if (!accept.every((t) => matcher.acceptToken(t))) {
        refused.push(i);
        continue;
      }
      const m = await matcher.getNextTokenBitmask();
      masks.set(new Uint32Array(m.buffer, m.byteOffset, words), i * words);
    }
    return { masks, refused };
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
