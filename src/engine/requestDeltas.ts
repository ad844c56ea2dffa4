/**
 * What a request's clients are sent after a pass: per sample, the token ids, logprobs and
 * detokenized text since its last delta (stop strings cut, held-back tails kept back), its prompt
 * logprobs and cached-token count on the first delta, and its finish reason on the last.
 */
import type { RequestState } from "./requestTable";
import type { Sequence } from "./sequence";
import type { FinishReason, GenerationDelta } from "./types";

/**
 * Appends to `deltas` one delta for every sample of `request` with news; returns true when every
 * sample has finished (the request is over). A rejected request fails instead: see RequestState.rejection.
 */
export function takeDeltas(request: RequestState, deltas: GenerationDelta[]): boolean {
  let allDone = true;
  for (const s of request.samples) {
    if (s.closed) continue; // finished earlier, while its siblings run on
    const seq = s.seq;
    const finished = seq.isFinished;
    if (!finished) allDone = false;
    if (s.out.pendingIds.length === 0 && !finished) continue;
    if (!finished) s.out.catchUp(seq.outputIds);
    else if (seq.finishReason !== "abort") s.out.catchUp(textIds(seq));
    const text = s.out.takeText(finished);
    if (s.out.pendingIds.length === 0 && text === "" && !finished) continue;
    const delta: GenerationDelta = { index: s.index, tokenIds: s.out.pendingIds, text };
    if (s.seq.params.logprobs > 0) delta.logprobs = s.out.pendingLogprobs;
    if (s.promptLogprobs) {
      delta.promptLogprobs = s.promptLogprobs;
      s.promptLogprobs = null; // sent once, on the sample's first delta
    }
    if (!s.started) {
      s.started = true;
      delta.cachedTokens = Math.max(0, seq.numCachedTokens);
    }
    if (finished) {
      s.closed = true;
      delta.finishReason = finishReasonOf(seq);
      if (seq.stopReason !== null) delta.stopReason = seq.stopReason;
    }
    s.out.pendingIds = [];
    s.out.pendingLogprobs = [];
    deltas.push(delta);
  }
  return allDone;
}

/**
 * The output ids whose text the client sees: a stop token or EOS that ended the sequence is left
 * out unless include_stop_str_in_output (vLLM drops it; its id still counts and is returned).
 */
function textIds(seq: Sequence): readonly number[] {
  const byToken = seq.finishReason === "stop" && typeof seq.stopReason !== "string";
  return byToken && !seq.params.includeStopStrInOutput ? seq.outputIds.slice(0, -1) : seq.outputIds;
}

function finishReasonOf(seq: Sequence): FinishReason {
  const r = seq.finishReason;
  if (r === "stop" || r === "length" || r === "abort") return r;
  throw new Error(`engine: sequence ${seq.id} finished as "${r}": a rejected request fails, it gets no finishing delta`);
}
