/**
 * OutputStream: one sample's text as the client sees it. Token ids are detokenized
 * incrementally; stop strings are matched on the text, and the tail that could still become a
 * stop string is held back, so a stop string is never partially emitted.
 *
 *   text:     | emitted ............ | held back (a stop-string prefix) |
 *   on stop:  text is cut where the stop string starts; the rest is never sent.
 *
 * Matching and holding back cost O(new text + longest stop string) per token (stopStrings.ts).
 */
import type { TokenDecoder } from "../tokenizer/detokenizer";
import { IncrementalDetokenizer } from "../tokenizer/detokenizer";
import { StopStringMatcher } from "./stopStrings";
import type { TokenLogprob } from "./types";

export class OutputStream {
  private readonly detok: IncrementalDetokenizer;
  private matcher: StopStringMatcher;
  /** Output ids detokenized so far. */
  private numDetokenized = 0;
  private text = "";
  private emitted = 0;
  /** Ids and logprobs generated since the last delta. */
  pendingIds: number[] = [];
  pendingLogprobs: TokenLogprob[] = [];
  matchedStop: string | null = null;

  /**
   * @param options.includeStop keep a matched stop string in the text (vLLM's include_stop_str_in_output)
   * @param options.skipSpecialTokens leave special tokens out of the text (default true)
   */
  constructor(
    tokenizer: TokenDecoder,
    promptIds: ArrayLike<number>,
    private readonly stops: readonly string[],
    private readonly options: { includeStop?: boolean; skipSpecialTokens?: boolean } = {},
  ) {
    const ctx = Array.from(promptIds).slice(-8);
    this.detok = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: options.skipSpecialTokens ?? true, contextIds: ctx });
    this.matcher = new StopStringMatcher(stops);
  }

  /**
   * Detokenizes output ids not seen yet and returns the stop string the text now contains
   * (the text is cut at its start), or null.
   */
  catchUp(outputIds: readonly number[]): string | null {
    if (this.matchedStop !== null) return this.matchedStop;
    while (this.numDetokenized < outputIds.length) {
      const piece = this.detok.push(outputIds[this.numDetokenized++]!);
      this.text += piece;
      const match = this.matcher.active && piece !== "" ? this.matcher.feed(piece) : null;
      if (match !== null) {
        this.text = this.text.slice(0, match.start + (this.options.includeStop ? match.stop.length : 0));
        this.matchedStop = match.stop;
        // Rare (a stop found before min_tokens lets the sequence run on): hold back against the cut text.
        this.matcher = new StopStringMatcher(this.stops);
        this.matcher.feed(this.text);
        return match.stop;
      }
    }
    return null;
  }

  /** Text that is safe to send now; everything when `final`. */
  takeText(final: boolean): string {
    if (final && this.matchedStop === null) this.text += this.detok.flush();
    let end = this.text.length;
    if (!final) end -= this.matcher.heldBack();
    if (end <= this.emitted) return "";
    const out = this.text.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }
}
