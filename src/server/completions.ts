/**
 * POST /v1/completions: prompts (text or token ids) → `text_completion` objects, whole or streamed
 * as SSE chunks. Choice i of prompt p has index p * n + i, as in OpenAI's API.
 */
import type { TokenLogprob } from "../engine/types";
import type { PromptInput } from "./completionPrompts";
import { readCompletionPrompts } from "./completionPrompts";
import { invalidParam, jsonResponse, unsupportedParam } from "./errors";
import type { GenerationRun, PromptJob } from "./generationRun";
import { cachedPromptTokens, chunkUsage, collectChoices, startGeneration, streamFailed, usage } from "./generationRun";
import type { CompletionLogprobs } from "./logprobs";
import { TokenStrings, completionLogprobs, vllmPromptLogprobs, withPromptLogprobs } from "./logprobs";
import { scoreOnly, truncateInput } from "./promptScoring";
import type { CompletionsBody } from "./schemas/completionsSchema";
import type { StreamParams } from "./samplingFields";
import { readSamplingParams, readStreamParams, settleMaxTokens } from "./samplingFields";
import type { ServerContext } from "./serverContext";
import { newId, readModel, unixNow } from "./serverContext";
import type { RequestTrace } from "./requestTrace";
import { sseResponse } from "./sse";
import { checkChatExtras, readTruncation } from "./vllmParams";

/** OpenAI's default max_tokens for completions. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;
/** Most choices (prompts times n) one request may ask for. */
export const MAX_CHOICES = 1024;

interface CompletionPlan {
  model: string;
  prompts: PromptInput[];
  jobs: PromptJob[];
  n: number;
  echo: boolean;
  /** Alternatives per token when logprobs were asked for. */
  logprobs?: number;
  stream: StreamParams;
  /** max_tokens 0 with echo: the prompt is scored, nothing is generated (promptScoring.ts). */
  scoring: boolean;
  /** vLLM's prompt_logprobs: alternatives per prompt token, when asked. */
  promptLogprobs?: number;
}

async function planCompletion(body: CompletionsBody, ctx: ServerContext): Promise<CompletionPlan> {
  const model = readModel(body.model, ctx);
  // Every cheap check runs before the prompts are tokenized, the one costly step.
  const echo = body.echo ?? false;
  const { sampling, maxTokens, maxTokensCap, n } = readSamplingParams(body, ctx, echo);
  const logprobs = body.logprobs;
  const truncation = readTruncation(body.truncate_prompt_tokens, ctx.engine.maxModelLen);
  const promptLogprobs = body.prompt_logprobs;
  if (body.suffix !== undefined && body.suffix !== "") throw unsupportedParam("suffix");
  const stream = readStreamParams(body);
  checkChatExtras(false, false, promptLogprobs, stream.stream);
  const limits = { maxChars: ctx.maxPromptChars, maxModelLen: truncation === undefined ? ctx.engine.maxModelLen : Infinity };
  const prompts = (await readCompletionPrompts(body.prompt, ctx.tokenizer, limits)).map((pr) => truncateInput(pr, truncation, ctx.tokenizer));
  if (prompts.length * n > MAX_CHOICES)
    throw invalidParam("n", `${prompts.length} prompts times n = ${n} is ${prompts.length * n} choices; at most ${MAX_CHOICES} per request.`);
  const jobs = prompts.map((prompt, i) => {
    const what = prompts.length === 1 ? "prompt" : `prompt[${i}]`;
    const max = settleMaxTokens(maxTokens, Math.min(DEFAULT_COMPLETION_MAX_TOKENS, maxTokensCap), prompt.ids.length, ctx.engine.maxModelLen, what);
    // Scoring runs one step (the engine always samples); its token is dropped (promptScoring.ts).
    const job: PromptJob = { promptIds: prompt.ids, sampling: { ...sampling, maxTokens: Math.max(1, max) } };
    // The engine returns the sampled token's logprob alongside its top-K, so ask for >= 1.
    if (logprobs !== undefined) job.sampling.logprobs = Math.max(1, logprobs);
    // echo + logprobs: the prompt's tokens get logprobs too (the first one null), as in OpenAI's API.
    if (logprobs !== undefined && echo) job.sampling.promptLogprobs = logprobs;
    if (promptLogprobs !== undefined) job.sampling.promptLogprobs = Math.max(promptLogprobs, job.sampling.promptLogprobs ?? 0);
    return job;
  });
  if (sampling.minTokens !== undefined && jobs.some((j) => sampling.minTokens! > j.sampling.maxTokens))
    throw invalidParam("min_tokens", "'min_tokens' must not exceed max tokens.");
  return { model, prompts, jobs, n, echo, logprobs, stream, scoring: maxTokens === 0, promptLogprobs };
}

/** Handles POST /v1/completions with its parsed JSON body. */
export async function handleCompletions(ctx: ServerContext, body: CompletionsBody, trace: RequestTrace): Promise<Response> {
  const plan = await planCompletion(body, ctx);
  const id = newId("cmpl");
  const created = unixNow();
  trace.responseId = id;
  trace.stream = plan.stream.stream;
  const run = scoreOnly(await startGeneration(ctx, id, plan.jobs, trace), plan.scoring);
  const promptTokens = plan.jobs.reduce((s, j) => s + j.promptIds.length, 0);
  const strings = new TokenStrings(ctx.tokenizer);
  const promptOf = (choice: number) => plan.prompts[Math.floor(choice / plan.n)]!;
  const formatLogprobs = (lps: TokenLogprob[] | undefined, offset: number, prompt?: { lps: (TokenLogprob | null)[]; ids: number[] }) => {
    if (plan.logprobs === undefined) return null;
    const generated = completionLogprobs(lps ?? [], plan.logprobs, strings, offset);
    return prompt ? withPromptLogprobs(prompt.lps, prompt.ids, plan.logprobs, strings, generated) : generated;
  };

  if (plan.stream.stream) {
    return sseResponse(streamChunks(plan, run, id, created, promptTokens, promptOf, formatLogprobs), run.abort, (e) => streamFailed(ctx, trace, e));
  }
  const results = await collectChoices(run, plan.prompts.length * plan.n);
  const choices = results.map((r, index) => {
    const prefix = plan.echo ? promptOf(index).text : "";
    return {
      index,
      text: prefix + r.text,
      logprobs: formatLogprobs(r.logprobs, prefix.length, r.promptLogprobs && { lps: r.promptLogprobs, ids: promptOf(index).ids }),
      finish_reason: r.finishReason,
      stop_reason: r.stopReason,
      ...(plan.promptLogprobs === undefined ? {} : { prompt_logprobs: vllmPromptLogprobs(r.promptLogprobs ?? [], plan.promptLogprobs, strings) }),
    };
  });
  const completionTokens = results.reduce((s, r) => s + r.tokenCount, 0);
  const cached = cachedPromptTokens(results.map((r) => r.cachedTokens), plan.n);
  return jsonResponse({ id, object: "text_completion", created, model: plan.model, choices, usage: usage(promptTokens, completionTokens, cached) });
}

async function* streamChunks(
  plan: CompletionPlan,
  run: GenerationRun,
  id: string,
  created: number,
  promptTokens: number,
  promptOf: (choice: number) => PromptInput,
  formatLogprobs: (lps: TokenLogprob[] | undefined, offset: number, prompt?: { lps: (TokenLogprob | null)[]; ids: number[] }) => unknown,
): AsyncGenerator<unknown> {
  const count = plan.prompts.length * plan.n;
  const offsets = new Array<number>(count).fill(-1); // -1: nothing sent yet (echo goes first)
  let completionTokens = 0;
  let cachedTokens = 0;
  const chunk = (choice: Record<string, unknown>) => ({
    id,
    object: "text_completion",
    created,
    model: plan.model,
    choices: [choice],
    ...chunkUsage(plan.stream, promptTokens, completionTokens, cachedTokens),
  });
  for await (const { choice, delta } of run.deltas) {
    completionTokens += delta.tokenIds.length;
    if (choice % plan.n === 0) cachedTokens += delta.cachedTokens ?? 0; // each prompt once
    let text = delta.text;
    if (offsets[choice] === -1) {
      const prefix = plan.echo ? promptOf(choice).text : "";
      text = prefix + text;
      offsets[choice] = prefix.length;
    }
    const hasLogprobs = plan.logprobs !== undefined && ((delta.logprobs?.length ?? 0) > 0 || delta.promptLogprobs !== undefined);
    if (text === "" && !hasLogprobs && !delta.finishReason) continue;
    const prompt = delta.promptLogprobs && { lps: delta.promptLogprobs, ids: promptOf(choice).ids };
    const logprobs = formatLogprobs(delta.logprobs, offsets[choice]!, prompt) as CompletionLogprobs | null;
    // Offsets advance by token strings, as in the non-streamed response.
    const last = logprobs?.tokens.length ? logprobs.tokens.length - 1 : -1;
    offsets[choice] = last >= 0 ? logprobs!.text_offset[last]! + logprobs!.tokens[last]!.length : offsets[choice]! + delta.text.length;
    yield chunk({
      index: choice,
      text,
      logprobs,
      finish_reason: delta.finishReason ?? null,
      stop_reason: delta.stopReason ?? null,
    });
  }
  if (plan.stream.includeUsage)
    yield { id, object: "text_completion", created, model: plan.model, choices: [], usage: usage(promptTokens, completionTokens, cachedTokens) };
}
