/**
 * EngineGrammars: the grammar side of one EngineCore. It compiles a request's constraint (cached,
 * see grammarCache.ts) into one matcher per sample, computes the masks of the next pass ahead of
 * it, and gives a sampled row its mask (EngineCore's mask source for the pass's mask builder). The XGrammar runtime and the model's tokenizer info are
 * loaded on the first constrained request, so an engine that never sees one pays nothing.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GrammarCache } from "./grammarCache";
import { SequenceGrammar } from "./sequenceGrammar";
import type { StructuredOutput } from "./spec";
import { grammarVocab } from "./vocab";

export { GrammarError } from "./grammarCache";

/** What EngineGrammars reads of the model: its tokenizer.json, vocab and stop ids. */
export interface GrammarModel {
  modelDir: string;
  vocabSize: number;
  eosTokenIds: readonly number[];
  idToToken(id: number): string | undefined;
}

export class EngineGrammars {
  private cache: Promise<GrammarCache> | null = null;
  /** Live grammars (one per constrained sample), for prepareMasks(). */
  private readonly live = new Set<SequenceGrammar>();

  /** True while some sequence decodes under a grammar. */
  get active(): boolean {
    return this.live.size > 0;
  }
  /** Host milliseconds computing masks and filling the mask slot. */
  readonly timing = { maskMs: 0, masks: 0 };

  constructor(private readonly model: GrammarModel) {}

  /** The compiler cache, created on first use. */
  compiler(): Promise<GrammarCache> {
    if (this.cache === null) {
      const { modelDir, vocabSize, eosTokenIds, idToToken } = this.model;
      const json = JSON.parse(readFileSync(join(modelDir, "tokenizer.json"), "utf8")) as Record<string, unknown>;
      this.cache = GrammarCache.create(grammarVocab(json, vocabSize, idToToken), [...eosTokenIds]);
      this.cache.catch(() => (this.cache = null));
    }
    return this.cache;
  }

  /** One matcher per sample of a request constrained by `s`. @throws GrammarError */
  async forRequest(s: StructuredOutput, n: number): Promise<SequenceGrammar[]> {
    const cache = await this.compiler();
    const compiled = await cache.get(s);
    const out: SequenceGrammar[] = [];
    for (let i = 0; i < n; i++) out.push(await SequenceGrammar.create(compiled, this.model.vocabSize));
    for (const g of out) this.live.add(g);
    return out;
  }

  /** Frees a finished sample's matcher. */
  release(g: SequenceGrammar): void {
    if (this.live.delete(g)) g.dispose();
  }

  /**
   * Computes the masks every live grammar lacks (those whose sequence accepted a token since),
   * so the next build() only copies them. Null when there is nothing to compute: no await.
   */
  prepareMasks(): Promise<void> | null {
    let stale: SequenceGrammar[] | null = null;
    for (const g of this.live) if (!g.hasMask && !g.isTerminated && !g.broken) (stale ??= []).push(g);
    if (stale === null) return null;
    const t0 = performance.now();
    return Promise.all(stale.map((g) => g.computeMask())).then(() => {
      this.timing.maskMs += performance.now() - t0;
      this.timing.masks += stale.length;
    });
  }

  /**
   * The mask of a sampled row of a sequence constrained by `g` (computed now, synchronously, if
   * prepareMasks() did not), after `outputIds`; null without a grammar. Only a sequence's next
   * token (ahead 0): grammar-constrained sequences do not speculate (EngineCore leaves them out).
   */
  maskFor(g: SequenceGrammar | undefined, outputIds: readonly number[], ahead: number): Uint32Array | null {
    if (!g) return null;
    if (ahead > 0) throw new Error("a grammar-constrained sequence has a draft row");
    const t0 = performance.now();
    g.syncTo(outputIds); // no-op unless the outputs moved without it (recompute, rollback)
    const mask = g.maskNow();
    this.timing.maskMs += performance.now() - t0;
    return mask;
  }
}
