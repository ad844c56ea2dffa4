/**
 * Stop strings matched on a stream of text in time linear in the text: one Knuth-Morris-Pratt
 * automaton per stop string. Its state is the length of the longest tail of the text so far that
 * is a prefix of the stop string, which is at once the match test (state = length) and how much
 * text must be held back (it could still become the stop string).
 *
 *   stop "abcab":  fail = [0, 0, 0, 1, 2]   (longest proper border of each prefix)
 *   text "..xab" -> state 2: hold back "ab";  then "cab" -> state 5: matched, starts 3 back
 *
 * Each appended character costs amortized O(1) per stop string and at most O(longest stop), so
 * a token costs O(new text + longest stop) instead of rescanning the text (issue #25: 64 stops
 * of 25K characters took one request from 0.34 s to 47 s and stalled every other request).
 */

/** Most stop strings per request: OpenAI's limit ("up to 4 sequences"). */
export const MAX_STOP_STRINGS = 4;

/**
 * Longest stop string, in characters. Real stop sequences are a few tokens ("\n\nUser:",
 * "</answer>"); the bound caps the text a stream holds back (a prefix of a stop string is not
 * sent until it is known not to be one) and the per-request tables.
 */
export const MAX_STOP_STRING_CHARS = 1024;

/** A stop string found in the text: which one, and where it starts (an offset into all text fed). */
export interface StopMatch {
  stop: string;
  start: number;
}

/** One stop string's automaton. */
class StopAutomaton {
  /** fail[i]: length of the longest proper border of stop[0..i]. */
  private readonly fail: Int32Array;
  state = 0;

  constructor(readonly stop: string) {
    this.fail = new Int32Array(stop.length);
    for (let i = 1, k = 0; i < stop.length; i++) {
      while (k > 0 && stop.charCodeAt(i) !== stop.charCodeAt(k)) k = this.fail[k - 1]!;
      if (stop.charCodeAt(i) === stop.charCodeAt(k)) k++;
      this.fail[i] = k;
    }
  }

  /** Feeds `chunk`; returns the index in it where the first full match ends (exclusive), or -1. */
  feed(chunk: string): number {
    const s = this.stop;
    let q = this.state;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      while (q > 0 && s.charCodeAt(q) !== c) q = this.fail[q - 1]!;
      if (s.charCodeAt(q) === c) q++;
      if (q === s.length) {
        this.state = q;
        return i + 1;
      }
    }
    this.state = q;
    return -1;
  }
}

/** Finds stop strings in text that arrives in pieces and says how much of its tail to hold back. */
export class StopStringMatcher {
  private readonly automata: StopAutomaton[];
  /** Characters fed so far. */
  private fed = 0;

  constructor(stops: readonly string[]) {
    this.automata = stops.filter((s) => s.length > 0).map((s) => new StopAutomaton(s));
  }

  /** Whether there is anything to match. */
  get active(): boolean {
    return this.automata.length > 0;
  }

  /**
   * Appends `chunk` to the text. Returns the stop string that now occurs and starts earliest
   * (on a tie the one listed first), or null. Text fed before held no stop string (the caller
   * stops at the first match), so any match ends inside `chunk`. Feed nothing after a match.
   */
  feed(chunk: string): StopMatch | null {
    let best: StopMatch | null = null;
    for (const a of this.automata) {
      const end = a.feed(chunk);
      if (end < 0) continue;
      const start = this.fed + end - a.stop.length;
      if (best === null || start < best.start) best = { stop: a.stop, start };
    }
    this.fed += chunk.length;
    return best;
  }

  /** Length of the longest tail of the text that is a proper prefix of some stop string. */
  heldBack(): number {
    let hold = 0;
    for (const a of this.automata) if (a.state < a.stop.length && a.state > hold) hold = a.state;
    return hold;
  }
}
