/**
 * Runs requests to completion on an in-process EngineCore: all of them are queued before the
 * first step, so they share forward passes. Used by `fastgen generate` and the tests.
 */
import type { EngineCore } from "./engineCore";
import type { SamplingOptions } from "./samplingOptions";
import type { FinishReason, TokenLogprob } from "./types";

export interface CompletedSample {
  tokenIds: number[];
  text: string;
  finishReason: FinishReason;
  /** Per generated token: the top-K [id, logprob] pairs (when logprobs were asked for). */
  logprobs: [number, number][][];
  tokenLogprobs: TokenLogprob[];
  /** When promptLogprobs was asked: one entry per prompt token (null for the first). */
  promptLogprobs?: (TokenLogprob | null)[];
}

export interface CompletionRequest {
  prompt?: string;
  promptIds?: number[];
}

/** Returns one CompletedSample per request (the first sample when n > 1), in request order. */
export function runToCompletion(core: EngineCore, requests: CompletionRequest[], sampling: SamplingOptions): CompletedSample[] {
  const results = requests.map<CompletedSample>(() => ({ tokenIds: [], text: "", finishReason: "abort", logprobs: [], tokenLogprobs: [] }));
  requests.forEach((r, i) => {
    const ids = r.promptIds ?? core.tokenizer.encode(r.prompt ?? "", { addSpecialTokens: true });
    core.addRequest(String(i), ids, sampling);
  });
  while (core.hasWork()) {
    for (const { id, deltas, error } of core.step()) {
      if (error) throw error;
      const res = results[Number(id)]!;
      for (const d of deltas) {
        if (d.index !== 0) continue;
        res.tokenIds.push(...d.tokenIds);
        res.text += d.text;
        for (const lp of d.logprobs ?? []) {
          res.tokenLogprobs.push(lp);
          res.logprobs.push(lp.top);
        }
        if (d.promptLogprobs) res.promptLogprobs = d.promptLogprobs;
        if (d.finishReason) res.finishReason = d.finishReason;
      }
    }
  }
  return results;
}
