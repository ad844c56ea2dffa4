/**
 * How many draft tokens a sequence may verify in one pass without changing what it returns.
 *
 * Verification samples k + 1 rows of one sequence in one pass, and the contract gives a
 * sequence ONE penalty list and ONE logit-bias list for all its rows. Rows that would need
 * different lists get no draft:
 *  - presence / frequency / repetition penalties count the outputs before each row, which grow
 *    by one per row: per-row penalty lists would be needed (not in fg_batch v2), so a penalized
 *    request never speculates;
 *  - bad_words bans depend on the outputs before each row: likewise;
 *  - min_tokens bans EOS and stop ids for rows below it: the draft stops short of the row where
 *    the ban lifts, so all its rows are on the same side.
 * Past max_tokens or the context, rows would be wasted: the draft stops there too.
 */
import { usesPenalties } from "../samplingParams";
import type { Sequence } from "../sequence";
import type { StopConfig } from "../stop";

/** Most draft tokens `seq` (a running decode) may verify in its next pass, at most `k`. */
export function maxDraftTokens(seq: Sequence, k: number, stop: StopConfig): number {
  const p = seq.params;
  if (usesPenalties(p) || p.badWords.length > 0) return 0;
  const out = seq.numOutputTokens;
  // k drafts + 1 bonus = up to k + 1 new tokens.
  let m = Math.min(k, p.maxTokens - out - 1);
  if (stop.maxModelLen !== undefined) m = Math.min(m, stop.maxModelLen - seq.numTokens - 1);
  if (out < p.minTokens) m = Math.min(m, p.minTokens - out - 1);
  return Math.max(0, m);
}
