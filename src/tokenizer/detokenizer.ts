/**
 * Incremental detokenizer: token ids in one at a time, new complete text out.
 *
 * Decoding one token alone is wrong in general: a byte-level or byte-fallback token may hold
 * half of a UTF-8 character, and SentencePiece decoders drop the ▁ space of the first token
 * they see. So each step decodes a short window of ids twice:
 *
 *   window:  | prefix: ids emitted last time | pending: ids not yet emitted |
 *            0                               read_offset                    end
 *   prefix_text = decode(window[0, read_offset))
 *   new_text    = decode(window)
 *   delta       = new_text minus its prefix_text head
 *   after a delta, the window becomes its pending part (vLLM's prefix_offset/read_offset).
 *
 * Both decodes start at the same token, so whatever the decoder does to a leading token it does
 * to both. A delta is held back while new_text ends in U+FFFD (the tail is an incomplete
 * multi-byte character) and while it adds nothing; the window then grows until it completes.
 * Windows start only where text was emitted, i.e. at character boundaries.
 */

/** What the detokenizer needs from a tokenizer. */
export interface TokenDecoder {
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
}

/** Options of {@link IncrementalDetokenizer}. */
export interface DetokenizerOptions {
  /** Leave special tokens (EOS, <|eot_id|>) out of the text (default true). */
  skipSpecialTokens?: boolean;
  /**
   * Ids that precede the output (the prompt's tail). They are never emitted, but the first
   * output token is decoded after them, so a leading "▁Hello" keeps its space as " Hello".
   * Without them the deltas join to exactly `decode(outputIds)`.
   */
  contextIds?: readonly number[];
}

/** Context tokens kept before the first output token: enough for any decoder's look-behind. */
const CONTEXT_TOKENS = 5;

const REPLACEMENT = "\uFFFD";

/** Streams the text of a growing sequence of token ids without ever splitting a character. */
export class IncrementalDetokenizer {
  /** ids[0, readOffset) were emitted (or are context); ids[readOffset, end) are pending. */
  private ids: number[];
  private readOffset: number;
  private pushed = 0;
  private readonly skipSpecialTokens: boolean;

  constructor(
    private readonly tokenizer: TokenDecoder,
    options: DetokenizerOptions = {},
  ) {
    this.skipSpecialTokens = options.skipSpecialTokens ?? true;
    this.ids = (options.contextIds ?? []).slice(-CONTEXT_TOKENS);
    this.readOffset = this.ids.length;
  }

  /** Number of output ids pushed so far. */
  get numTokens(): number {
    return this.pushed;
  }

  /** Appends one id; returns the text it completes ("" while a character is still partial). */
  push(id: number): string {
    this.ids.push(id);
    this.pushed++;
    return this.step(false);
  }

  /** Appends several ids; returns the text they complete. */
  pushMany(ids: Iterable<number>): string {
    let out = "";
    for (const id of ids) out += this.push(id);
    return out;
  }

  /**
   * Ends the stream: returns whatever is still held back, U+FFFD included when the output
   * really ends in an incomplete character.
   */
  flush(): string {
    return this.step(true);
  }

  private step(final: boolean): string {
    if (this.readOffset >= this.ids.length) return "";
    const opts = { skipSpecialTokens: this.skipSpecialTokens };
    const prefixText = this.readOffset > 0 ? this.tokenizer.decode(this.ids.slice(0, this.readOffset), opts) : "";
    const newText = this.tokenizer.decode(this.ids, opts);
    if (!final && (newText.length <= prefixText.length || newText.endsWith(REPLACEMENT))) return "";
    // Decoders are prefix-stable at character boundaries; should one not be, still diff sanely.
    const cut = newText.startsWith(prefixText) ? prefixText.length : commonPrefix(newText, prefixText);
    // The emitted tail becomes the next window's prefix; older ids are never decoded again.
    this.ids = this.ids.slice(this.readOffset);
    this.readOffset = this.ids.length;
    return newText.slice(cut);
  }
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}
