/**
 * OutputStream: one sample's text as the client sees it. Token ids are detokenized
 * incrementally; stop strings are matched on the text, and the tail that could still become a
 * stop string is held back, so a stop string is never partially emitted.
 *
 *   text:     | emitted ............ | held back (a stop-string prefix) |
 *   on stop:  text is cut where the stop string starts; the rest is never sent.
 */
import { IncrementalDetokenizer } from "../tokenizer/detokenizer";
import type { Tokenizer } from "../tokenizer/tokenizer";
import type { TokenLogprob } from "./types";

export class OutputStream {
  private readonly detok: IncrementalDetokenizer;
  private readonly maxStopLen: number;
  /** Output ids detokenized so far. */
  private numDetokenized = 0;
  private text = "";
  private emitted = 0;
  /** Ids and logprobs generated since the last delta. */
  pendingIds: number[] = [];
  pendingLogprobs: TokenLogprob[] = [];
  matchedStop: string | null = null;

  constructor(
    tokenizer: Tokenizer,
    promptIds: ArrayLike<number>,
    private readonly stops: readonly string[],
  ) {
    const ctx = Array.from(promptIds).slice(-8);
    this.detok = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: true, contextIds: ctx });
    this.maxStopLen = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /**
   * Detokenizes output ids not seen yet and returns the stop string the text now contains
   * (the text is cut at its start), or null.
   */
  catchUp(outputIds: readonly number[]): string | null {
    if (this.matchedStop !== null) return this.matchedStop;
    while (this.numDetokenized < outputIds.length) {
      const before = this.text.length;
      this.text += this.detok.push(outputIds[this.numDetokenized++]!);
      if (this.maxStopLen > 0 && this.text.length > before) {
        const from = Math.max(0, before - this.maxStopLen + 1);
        let cut = -1, which: string | null = null;
        for (const s of this.stops) {
          const at = this.text.indexOf(s, from);
          if (at >= 0 && (cut < 0 || at < cut)) (cut = at), (which = s);
        }
        if (which !== null) {
          this.text = this.text.slice(0, cut);
          this.matchedStop = which;
          return which;
        }
      }
    }
    return null;
  }

  /** Text that is safe to send now; everything when `final`. */
  takeText(final: boolean): string {
    if (final && this.matchedStop === null) this.text += this.detok.flush();
    let end = this.text.length;
    if (!final) end -= this.heldBack();
    if (end <= this.emitted) return "";
    const out = this.text.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }

  /** Length of the longest text suffix that is a proper prefix of some stop string. */
  private heldBack(): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length); k > hold; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  }
}
