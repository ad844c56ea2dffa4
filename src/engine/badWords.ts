/**
 * vLLM's bad_words as a ban list for the next token. Each bad word is a token sequence; its last
 * token is banned (a -inf logit bias) when the output so far ends with the others:
 *
 *   word [a, b, c], output [..., a, b]  → c banned now
 *   word [c]                            → c banned always
 *
 * Only output tokens count (the prompt may hold the word), as in vLLM.
 */

const NONE: readonly number[] = [];

/** The token ids that would complete one of `words` after `outputIds`. */
export function bannedBadWordIds(words: readonly (readonly number[])[], outputIds: readonly number[]): readonly number[] {
  if (words.length === 0) return NONE;
  const out: number[] = [];
  const n = outputIds.length;
  for (const word of words) {
    const prefix = word.length - 1;
    if (prefix > n) continue;
    let matches = true;
    for (let j = 0; j < prefix && matches; j++) matches = outputIds[n - prefix + j] === word[j];
    if (matches) out.push(word[prefix]!);
  }
  return out;
}
