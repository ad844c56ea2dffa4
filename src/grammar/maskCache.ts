/**
 * MaskCache: next-token masks keyed by exact matcher state, shared by the sequences in that state.
 * XGrammar does not expose a matcher's state, but a matcher of one compiled grammar that accepted
 * the same token ids is in the same state, so (grammar, accepted ids) is an exact key. Histories
 * are keyed only up to MAX_KEYED_TOKENS ids: the n samples of a request, and every request of an
 * app's schema, start with the same tokens (`{"items":["` costs XGrammar ~70 us a mask on the demo
 * vocab), while long outputs diverge and a key as long as the output would cost more than it saves.
 *
 * It lives on the engine thread: a state seen before takes its mask without asking the grammar
 * Worker at all. Cached masks are shared and read-only; RowMaskBuilder gives rows with the same
 * array one slot.
 */

/** The engine's handle of a grammar compiled in the grammar Worker (one per key and Worker). */
export interface GrammarRef {
  /** The constraint's cache key (spec.ts grammarKey). */
  readonly key: string;
}

/** Longest history (accepted ids) that gets a key. */
export const MAX_KEYED_TOKENS = 32;
/** Masks kept per compiled grammar (LRU). */
const MASKS_PER_GRAMMAR = 256;

export class MaskCache {
  private readonly byGrammar = new WeakMap<GrammarRef, Map<string, Uint32Array>>();
  readonly stats = { hits: 0, misses: 0 };

  /** The key of a matcher of `grammar` after `accepted`, or null when the history is too long. */
  static keyOf(accepted: readonly number[]): string | null {
    return accepted.length <= MAX_KEYED_TOKENS ? accepted.join(",") : null;
  }

  get(grammar: GrammarRef, key: string): Uint32Array | undefined {
    const masks = this.byGrammar.get(grammar);
    const mask = masks?.get(key);
    if (mask === undefined) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    masks!.delete(key); // LRU: move to the back
    masks!.set(key, mask);
    return mask;
  }

  set(grammar: GrammarRef, key: string, mask: Uint32Array): void {
    let masks = this.byGrammar.get(grammar);
    if (masks === undefined) this.byGrammar.set(grammar, (masks = new Map()));
    masks.set(key, mask);
    if (masks.size > MASKS_PER_GRAMMAR) masks.delete(masks.keys().next().value!);
  }
}
