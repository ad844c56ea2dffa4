/**
 * vLLM's bad_words as a ban list for the next token. Each bad word is a token sequence; its last
 * token is banned (a -inf logit bias) when the output so far ends with the others:
 *
 *   word [a, b, c], output [..., a, b]  → c banned now
 *   word [c]                            → c banned always
 *
 * Only output tokens count (the prompt may hold the word), as in vLLM.
 *
 * Speculative verification samples k + 1 rows of a sequence in one pass, row j after the output
 * and draft tokens 0..j-1, so a word's ban may hold at some rows and not at others; one bias list
 * per sequence cannot say that. A sequence with a draft keeps only its always-banned ids (words of
 * one token) in its bias (StepBatchBuilder), and BadWordMasks gives each of its rows the bans of
 * the longer words as an allowed-token mask (rowMasks.ts): a cleared bit is a -inf logit like the
 * bias's, so every row picks what it would without the draft.
 */
import type { RowMaskSource } from "./rowMasks";
import { maskWords } from "./rowMasks";
import type { Sequence } from "./sequence";

type Words = readonly (readonly number[])[];

const NONE: readonly number[] = [];

/**
 * The token ids that would complete one of `words` after `outputIds` followed by the first
 * `ahead` ids of `draft`; words shorter than `minLength` tokens are skipped.
 */
export function bannedBadWordIds(words: Words, outputIds: readonly number[], draft: ArrayLike<number> = NONE, ahead = 0, minLength = 1): readonly number[] {
  if (words.length === 0) return NONE;
  const out: number[] = [];
  const n0 = outputIds.length;
  const n = n0 + ahead;
  for (const word of words) {
    const prefix = word.length - 1;
    if (word.length < minLength || prefix > n) continue;
    let matches = true;
    for (let j = 0; j < prefix && matches; j++) {
      const i = n - prefix + j;
      matches = (i < n0 ? outputIds[i] : draft[i - n0]) === word[j];
    }
    if (matches) out.push(word[prefix]!);
  }
  return out;
}

/** The ids banned whatever the output: the words of one token. */
export function alwaysBannedIds(words: Words): readonly number[] {
  return bannedBadWordIds(words, NONE);
}

/** Whether some word of `words` is longer than one token (its ban depends on the output). */
export function hasPrefixedWord(words: Words): boolean {
  for (const w of words) if (w.length > 1) return true;
  return false;
}

/** Masks kept for reuse (one per distinct banned set); past this many the cache starts over. */
const MAX_CACHED = 256;

/** The per-row bans of a drafted sequence's words of two tokens or more (see above). */
export class BadWordMasks implements RowMaskSource {
  private readonly cache = new Map<string, Uint32Array>();

  constructor(private readonly vocab: number) {}

  maskFor(seq: Sequence, ahead: number, draft?: Int32Array): Uint32Array | null {
    const words = seq.params.badWords;
    if (draft === undefined || words.length === 0) return null;
    const banned = bannedBadWordIds(words, seq.outputIds, draft, ahead, 2);
    if (banned.length === 0) return null;
    // One array per banned set: the mask builder gives rows with the same array one slot.
    const key = banned.length === 1 ? String(banned[0]) : [...banned].sort((a, b) => a - b).join(",");
    let mask = this.cache.get(key);
    if (mask === undefined) {
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      mask = new Uint32Array(maskWords(this.vocab)).fill(0xffffffff);
      for (const id of banned) if (id >= 0 && id < this.vocab) mask[id >>> 5] = mask[id >>> 5]! & ~(1 << (id & 31));
      this.cache.set(key, mask);
    }
    return mask;
  }
}
