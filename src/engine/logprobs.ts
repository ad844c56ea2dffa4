/**
 * Logprobs out of a pass's StepResult: the sampled token's (logprobs) and the prompt tokens'
 * (prompt_logprobs). Result rows are `stride` wide, the batch's largest k:
 *
 *   topIds / topLogprobs: [num_rows, stride]   row r's alternatives at [r * stride, r * stride + k)
 *   logprobs:             [num_rows]           the logprob of the row's target (sampled or prompt) id
 */
import type { Plan } from "./scheduler";
import type { StepBatch } from "./stepBatch";
import type { TokenLogprob } from "./types";
import type { StepResult } from "../native";

/** A sample's prompt logprobs while they fill: [i] is prompt token i's given those before it ([0] null). */
export interface PromptLogprobsHolder {
  promptLogprobs: (TokenLogprob | null)[] | null;
}

/** The sampled token's logprob and its row's top-k. */
export function tokenLogprob(result: StepResult, row: number, id: number, k: number, stride: number): TokenLogprob {
  const top: [number, number][] = [];
  for (let j = 0; j < k; j++) top.push([result.topIds![row * stride + j]!, result.topLogprobs![row * stride + j]!]);
  return { id, logprob: result.logprobs[row]!, top };
}

/**
 * Stores the prompt logprobs of the pass's scored rows into the samples (by sequence id) that
 * asked for them. Call before applyStep advances the sequences.
 */
export function recordPromptLogprobs(
  plan: Plan,
  batch: StepBatch,
  result: StepResult,
  stride: number,
  samples: ReadonlyMap<number, PromptLogprobsHolder>,
): void {
  const { rowIndptr, rowTokens, rowTargets, positions } = batch;
  if (!rowTargets) return;
  const entries = plan.entries;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const lps = samples.get(e.seq.id)?.promptLogprobs;
    if (!lps) continue;
    const k = e.seq.params.promptLogprobs;
    for (let r = rowIndptr[i]!; r < rowIndptr[i + 1]!; r++) {
      const id = rowTargets[r]!;
      if (id < 0) continue;
      const top: [number, number][] = [];
      for (let q = 0; q < k; q++) top.push([result.topIds![r * stride + q]!, result.topLogprobs![r * stride + q]!]);
      lps[positions[rowTokens[r]!]! + 1] = { id, logprob: result.logprobs[r]!, top };
    }
  }
}
