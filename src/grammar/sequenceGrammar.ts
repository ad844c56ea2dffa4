/**
 * SequenceGrammar: one sequence's XGrammar matcher, kept in step with the sequence's output ids.
 * It accepts each sampled token, rolls back k tokens (speculative decoding rejects drafts; a
 * preempted sequence that is recomputed keeps its outputs, so its matcher stays valid, and
 * syncTo() re-matches whatever differs), and holds the allowed-token bitmask of the next token,
 * computed once per accepted token.
 *
 *   mask: [ceil(vocab / 32)] uint32, bit id % 32 of word id / 32 set = id allowed (fg_batch masks)
 */
import type { CompiledGrammar } from "@mlc-ai/web-xgrammar";
import { GrammarMatcher } from "@mlc-ai/web-xgrammar";

/** The embind vector XGrammar's matcher returns (used by the synchronous mask path). */
interface IntVector {
  size(): number;
  get(i: number): number;
  delete(): void;
}

export class SequenceGrammar {
  /** Ids accepted so far (the sequence's output ids, when in step). */
  private readonly accepted: number[] = [];
  private mask: Uint32Array | null = null;
  /** Set when a sampled id was refused: the output cannot match any more. */
  broken = false;

  private constructor(
    private readonly matcher: GrammarMatcher,
    /** The compiled grammar the matcher runs (with the accepted ids, its exact state: maskCache.ts). */
    readonly grammar: CompiledGrammar,
    readonly vocabSize: number,
  ) {}

  static async create(grammar: CompiledGrammar, vocabSize: number): Promise<SequenceGrammar> {
    return new SequenceGrammar(await GrammarMatcher.createGrammarMatcher(grammar), grammar, vocabSize);
  }

  /** The ids accepted so far (read-only). */
  get acceptedIds(): readonly number[] {
    return this.accepted;
  }

  get numAccepted(): number {
    return this.accepted.length;
  }

  /** The grammar accepted a stop token: nothing may follow. */
  get isTerminated(): boolean {
    return this.matcher.isTerminated();
  }

  /** Whether the next token's mask is computed. */
  get hasMask(): boolean {
    return this.mask !== null;
  }

  /** Accepts one sampled id; false (and `broken`) when the grammar refuses it. */
  accept(id: number): boolean {
    if (this.broken) return false;
    if (!this.matcher.acceptToken(id)) {
      this.broken = true;
      return false;
    }
    this.accepted.push(id);
    this.mask = null;
    return true;
  }

  /** Undoes the last `k` accepted ids. */
  rollback(k: number): void {
    if (k <= 0) return;
    if (k > this.accepted.length) throw new Error(`SequenceGrammar: cannot roll back ${k} of ${this.accepted.length} tokens`);
    this.matcher.rollBack(k);
    this.accepted.length -= k;
    this.mask = null;
    this.broken = false;
  }

  /** Brings the matcher to exactly `ids`: rolls back past the first difference, accepts the rest. */
  syncTo(ids: readonly number[]): boolean {
    let same = 0;
    const n = Math.min(ids.length, this.accepted.length);
    while (same < n && ids[same] === this.accepted[same]) same++;
    this.rollback(this.accepted.length - same);
    for (let i = same; i < ids.length; i++) if (!this.accept(ids[i]!)) return false;
    return true;
  }

  /**
   * Computes the next token's mask (async: XGrammar's JS API is; the work itself is synchronous
   * WebAssembly, ~35 us for a JSON string state on the demo vocab, nearly all of the mask's cost).
   */
  async computeMask(): Promise<Uint32Array> {
    if (this.mask !== null) return this.mask;
    const words = await this.matcher.getNextTokenBitmask();
    return (this.mask = new Uint32Array(words.buffer, words.byteOffset, words.length));
  }

  /** Takes the next token's mask computed elsewhere for the same state (shared: never written). */
  useMask(mask: Uint32Array): void {
    this.mask = mask;
  }

  /**
   * The next token's mask, computed now if needed through the matcher's embind handle (the
   * synchronous path, for in-process callers that cannot await; about 5x slower to copy out).
   */
  maskNow(): Uint32Array {
    if (this.mask !== null) return this.mask;
    const handle = (this.matcher as unknown as { handle: { GetNextTokenBitmask(v: number): IntVector } }).handle;
    const vec = handle.GetNextTokenBitmask(this.vocabSize);
    try {
      const n = vec.size();
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = vec.get(i);
      this.mask = out;
    } finally {
      vec.delete();
    }
    return this.mask;
  }

  dispose(): void {
    this.matcher.dispose();
    this.mask = null;
  }
}
