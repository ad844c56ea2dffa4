/**
 * Prompt lookup (n-gram) proposals: the sequence's last n tokens (n from prompt_lookup_max down
 * to prompt_lookup_min) are searched for in its own prompt and output, latest occurrence first;
 * the tokens that followed that occurrence are the proposal. Pays where the output quotes the
 * prompt or repeats itself (summaries, code edits, extraction), costs nothing to compute.
 */
import type { ProposalRequest, Proposer } from "./proposer";
import { NO_PROPOSAL } from "./proposer";

export class NgramProposer implements Proposer {
  readonly method = "ngram";

  constructor(
    private readonly minN: number,
    private readonly maxN: number,
  ) {}

  propose(requests: readonly ProposalRequest[]): Int32Array[] {
    return requests.map((r) => lookup(r.seq.tokenIds, this.minN, this.maxN, r.maxTokens));
  }
}

/**
 * The up to `k` tokens after the latest earlier occurrence of `tokens`' last n tokens, for the
 * longest n in [minN, maxN] that occurs; empty when none does.
 */
export function lookup(tokens: Int32Array, minN: number, maxN: number, k: number): Int32Array {
  const len = tokens.length;
  if (k < 1) return NO_PROPOSAL;
  for (let n = Math.min(maxN, len - 1); n >= minN; n--) {
    const tail = len - n;
    // Latest start first; a match must leave at least one token after it (start + n < len).
    for (let start = tail - 1; start >= 0; start--) {
      let j = 0;
      while (j < n && tokens[start + j] === tokens[tail + j]) j++;
      if (j === n) return tokens.slice(start + n, Math.min(len, start + n + k));
    }
  }
  return NO_PROPOSAL;
}
