/**
 * Logprobs in OpenAI's two shapes, built from the engine's TokenLogprob (sampled id + top-K):
 *   completions: { tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset }
 *   chat:        { content: [{ token, logprob, bytes, top_logprobs: [{ token, logprob, bytes }] }] }
 * Token strings are each id decoded alone, as vLLM does.
 */
import type { TokenLogprob } from "../engine/types";
import type { Tokenizer } from "../tokenizer/tokenizer";

/** Logprobs of some tokens of a completions choice. */
export interface CompletionLogprobs {
  tokens: string[];
  /** null for the first prompt token when echoing (nothing comes before it). */
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/** One alternative token of a chat logprob. */
export interface ChatTopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** One generated token of a chat logprob, with its alternatives. */
export interface ChatTokenLogprob extends ChatTopLogprob {
  top_logprobs: ChatTopLogprob[];
}

/** A chat choice's logprobs. */
export interface ChatLogprobs {
  content: ChatTokenLogprob[];
}

const encoder = new TextEncoder();
/** JSON has no -Infinity: clamp to the most negative finite logprob OpenAI clients accept. */
const finite = (lp: number) => (Number.isFinite(lp) ? lp : -9999);

/** Decodes tokens for logprobs, caching the strings of ids seen before. */
export class TokenStrings {
  private readonly cache = new Map<number, string>();

  constructor(private readonly tokenizer: Tokenizer) {}

  of(id: number): string {
    let s = this.cache.get(id);
    if (s === undefined) {
      s = this.tokenizer.decode([id]);
      this.cache.set(id, s);
    }
    return s;
  }
}

/**
 * Completions logprobs of `lps`; `offset` is where the first token starts in the choice's text
 * (after the prompt when echoing). `topK` alternatives per token, plus the sampled one.
 */
export function completionLogprobs(lps: TokenLogprob[], topK: number, strings: TokenStrings, offset: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const lp of lps) {
    const token = strings.of(lp.id);
    const top: Record<string, number> = {};
    for (const [id, logprob] of lp.top.slice(0, topK)) {
      const s = strings.of(id);
      if (!(s in top)) top[s] = finite(logprob);
    }
    if (!(token in top)) top[token] = finite(lp.logprob);
    out.tokens.push(token);
    out.token_logprobs.push(finite(lp.logprob));
    out.top_logprobs.push(top);
    out.text_offset.push(offset);
    offset += token.length;
  }
  return out;
}

/**
 * Completions logprobs of an echoed prompt (from the engine's prompt logprobs), text offsets from
 * 0, followed by those of the generated tokens in `rest` (whose offsets start after the prompt).
 */
export function withPromptLogprobs(
  prompt: (TokenLogprob | null)[],
  promptIds: readonly number[],
  topK: number,
  strings: TokenStrings,
  rest: CompletionLogprobs,
): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = 0;
  promptIds.forEach((id, i) => {
    const lp = prompt[i] ?? null;
    const one = lp ? completionLogprobs([lp], topK, strings, offset) : null;
    out.tokens.push(strings.of(id));
    out.token_logprobs.push(one ? one.token_logprobs[0]! : null);
    out.top_logprobs.push(one ? one.top_logprobs[0]! : null);
    out.text_offset.push(offset);
    offset += strings.of(id).length;
  });
  out.tokens.push(...rest.tokens);
  out.token_logprobs.push(...rest.token_logprobs);
  out.top_logprobs.push(...rest.top_logprobs);
  out.text_offset.push(...rest.text_offset);
  return out;
}

/** Chat logprobs of `lps` with `topK` alternatives per token. */
export function chatLogprobs(lps: TokenLogprob[], topK: number, strings: TokenStrings): ChatLogprobs {
  const entry = (id: number, logprob: number): ChatTopLogprob => {
    const token = strings.of(id);
    return { token, logprob: finite(logprob), bytes: Array.from(encoder.encode(token)) };
  };
  return {
    content: lps.map((lp) => ({
      ...entry(lp.id, lp.logprob),
      top_logprobs: lp.top.slice(0, topK).map(([id, logprob]) => entry(id, logprob)),
    })),
  };
}

/** One entry of vLLM's prompt_logprobs: a token's logprob, its rank (1 = most likely; null when not in the top list) and its text. */
export interface VllmLogprob {
  logprob: number;
  rank: number | null;
  decoded_token: string;
}

/**
 * vLLM's `prompt_logprobs`: per prompt token, null for the first (nothing precedes it), else
 * { "<id>": {...} } for the token itself and its top `topK` alternatives.
 */
export function vllmPromptLogprobs(prompt: (TokenLogprob | null)[], topK: number, strings: TokenStrings): (Record<string, VllmLogprob> | null)[] {
  return prompt.map((lp) => {
    if (!lp) return null;
    const top = lp.top.slice(0, topK);
    const rankOf = (id: number) => {
      const i = lp.top.findIndex(([t]) => t === id);
      return i >= 0 ? i + 1 : null;
    };
    const out: Record<string, VllmLogprob> = { [lp.id]: { logprob: finite(lp.logprob), rank: rankOf(lp.id), decoded_token: strings.of(lp.id) } };
    top.forEach(([id, logprob], i) => {
      if (!(id in out)) out[id] = { logprob: finite(logprob), rank: i + 1, decoded_token: strings.of(id) };
    });
    return out;
  });
}
