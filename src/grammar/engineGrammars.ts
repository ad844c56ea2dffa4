/**
 * EngineGrammars: the grammar side of one EngineCore. It compiles a request's constraint (cached,
 * see grammarCache.ts) into one matcher per sample, computes the masks of the next pass ahead of
 * it, and gives a sampled row its mask (EngineCore's mask source for the pass's mask builder). The XGrammar runtime and the model's tokenizer info are
 * loaded on the first constrained request, so an engine that never sees one pays nothing.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GrammarCache } from "./grammarCache";
import { MaskCache } from "./maskCache";
import { SequenceGrammar } from "./sequenceGrammar";
import type { CompiledGrammar } from "@mlc-ai/web-xgrammar";
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
  /** Masks by exact matcher state, shared by samples in that state (maskCache.ts). */
  readonly maskCache = new MaskCache();
  /** Host milliseconds computing masks and filling the mask slot; masks handed out, and those XGrammar computed. */
  readonly timing = { maskMs: 0, masks: 0, computed: 0 };

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
   * so the next build() only copies them. A state seen before (maskCache.ts) takes its cached
   * mask, and sequences in one state share one computation. Null when nothing is left to compute:
   * no await.
   */
  prepareMasks(): Promise<void> | null {
    const t0 = performance.now();
    let leaders: SequenceGrammar[] | null = null;
    let keys: (string | null)[] | null = null;
    let followers: [SequenceGrammar, number][] | null = null; // (sample, index of its leader)
    let byKey: Map<CompiledGrammar, Map<string, number>> | null = null;
    let taken = 0;
    for (const g of this.live) {
      if (g.hasMask || g.isTerminated || g.broken) continue;
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
    if (leaders === null) {
      this.timing.maskMs += performance.now() - t0;
      return null;
    }
    const computing = leaders;
    return Promise.all(computing.map((g) => g.computeMask())).then((masks) => {
      for (let i = 0; i < masks.length; i++) if (keys![i] !== null) this.maskCache.set(computing[i]!.grammar, keys![i]!, masks[i]!);
      if (followers !== null) for (const [g, leader] of followers) g.useMask(masks[leader]!);
      this.timing.maskMs += performance.now() - t0;
      this.timing.computed += computing.length;
      this.timing.masks += computing.length + (followers?.length ?? 0);
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
