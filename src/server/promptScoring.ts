/**
 * Prompt-side options of /v1/completions:
 * - `max_tokens: 0` with `echo` scores the prompt without generating (vLLM): the engine always
 *   samples at least one token, so the run has max tokens 1 and its token is dropped here; the
 *   choice holds the echoed prompt (and its logprobs), completion_tokens 0, finish_reason "length".
 * - `truncate_prompt_tokens` keeps a prompt's last k tokens; its text (for echo) is decoded again.
 */
import type { GenerationDelta } from "../engine/types";
import type { Tokenizer } from "../tokenizer/tokenizer";
import type { PromptInput } from "./completionPrompts";
import type { ChoiceDelta, GenerationRun } from "./generationRun";
import { truncatePrompt } from "./vllmParams";

/** A delta with everything generated taken out (the prompt's logprobs and the finish stay). */
function withoutOutput(delta: GenerationDelta): GenerationDelta {
  const out: GenerationDelta = { ...delta, text: "", tokenIds: [] };
  if (delta.logprobs) out.logprobs = [];
  if (delta.finishReason) {
    out.finishReason = "length";
    delete out.stopReason;
  }
  return out;
}

async function* scored(deltas: AsyncIterable<ChoiceDelta>): AsyncGenerator<ChoiceDelta> {
  for await (const { choice, delta } of deltas) yield { choice, delta: withoutOutput(delta) };
}

/** `run` as prompt scoring when `scoring` (see above); unchanged otherwise. */
export function scoreOnly(run: GenerationRun, scoring: boolean): GenerationRun {
  return scoring ? { ...run, deltas: scored(run.deltas) } : run;
}

/** A completions prompt cut to its last `keep` tokens (text decoded again when cut). */
export function truncateInput(prompt: PromptInput, keep: number | undefined, tokenizer: Tokenizer): PromptInput {
  const ids = truncatePrompt(prompt.ids, keep);
  return ids === prompt.ids ? prompt : { ids, text: tokenizer.decode(ids) };
}
