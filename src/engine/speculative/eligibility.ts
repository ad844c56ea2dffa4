/**
 * How many draft tokens a sequence may verify in one pass without changing what it returns.
 *
 * Verification samples k + 1 rows of one sequence in one pass, row j after the draft tokens
 * before it; each row must draw what decoding one token at a time would draw there:
 *  - presence / frequency / repetition penalties: the library counts row j's draft tokens
 *    0..j-1 as outputs (fastgen.h, per-row penalties), so penalized requests speculate;
 *  - bad_words: bans that depend on the output reach each row as its own mask (badWords.ts);
 *  - logit bias is one list for all rows, and alike for all of them;
 *  - min_tokens bans EOS and stop ids for rows below it: the draft stops short of the row where
 *    the ban lifts, so all its rows are on the same side.
 * Past max_tokens or the context, rows would be wasted: the draft stops there too. Grammar-
 * constrained sequences never get here (EngineCore leaves them out: their masks are built for
 * one row a pass).
 */
import type { Sequence } from "../sequence";
import type { StopConfig } from "../stop";

/** Most draft tokens `seq` (a running decode) may verify in its next pass, at most `k`. */
export function maxDraftTokens(seq: Sequence, k: number, stop: StopConfig): number {
  const p = seq.params;
  const out = seq.numOutputTokens;
  // k drafts + 1 bonus = up to k + 1 new tokens.
  let m = Math.min(k, p.maxTokens - out - 1);
  if (stop.maxModelLen !== undefined) m = Math.min(m, stop.maxModelLen - seq.numTokens - 1);
  if (out < p.minTokens) m = Math.min(m, p.minTokens - out - 1);
  return Math.max(0, m);
}
