/**
 * The unconstrained run: the fake model generating one token at a time for one request, with
 * no scheduler, no budget and no KV pool. Stop rules and bad_words bans are written out again
 * here, on purpose, rather than calling src/engine/stop.ts and badWords.ts.
 */
import type { SamplingParams } from "../../src/engine/samplingParams";
import { contextHash, sampleId } from "./fakeModel";

export interface ReferenceOutput {
  tokens: number[];
  finishReason: "stop" | "length";
}

export function referenceRun(prompt: readonly number[], p: SamplingParams, eosTokenIds: readonly number[]): ReferenceOutput {
  const tokens = [...prompt];
  const out: number[] = [];
  const biasBans = new Set<number>();
  p.logitBiasIds.forEach((id, i) => {
    if (p.logitBiasValues[i]! <= -100) biasBans.add(id);
  });
  const penalties = p.presencePenalty !== 0 || p.frequencyPenalty !== 0 || p.repetitionPenalty !== 1;
  for (;;) {
    const pen = penalties ? [...(p.repetitionPenalty !== 1 ? prompt : []), ...out] : null;
    const h = contextHash(tokens, p.seed, p.temperature, pen);
    const belowMin = out.length < p.minTokens;
    const wordBans = badWordBans(p.badWords, out);
    const t = sampleId(h, (id) =>
      biasBans.has(id) || wordBans.has(id) || (belowMin && (p.stopTokenIds.includes(id) || (!p.ignoreEos && eosTokenIds.includes(id)))));
    out.push(t);
    tokens.push(t);
    if (out.length >= p.minTokens) {
      if (!p.ignoreEos && eosTokenIds.includes(t)) return { tokens: out, finishReason: "stop" };
      if (p.stopTokenIds.includes(t)) return { tokens: out, finishReason: "stop" };
    }
    if (out.length >= p.maxTokens) return { tokens: out, finishReason: "length" };
  }
}

/** bad_words: a word's last id is banned when the output ends with the rest of it. */
function badWordBans(words: readonly (readonly number[])[], out: readonly number[]): Set<number> {
  const bans = new Set<number>();
  for (const w of words) {
    const rest = w.slice(0, -1);
    if (rest.length <= out.length && rest.every((id, j) => out[out.length - rest.length + j] === id)) bans.add(w[w.length - 1]!);
  }
  return bans;
}
