/**
 * POST /v1/chat/completions: messages rendered with the chat template → `chat.completion`, or
 * `chat.completion.chunk` SSE chunks: first `delta.role` for every choice, then `delta.content`,
 * `finish_reason` on each choice's last chunk, an optional usage chunk, then [DONE].
 * With tools, choices carry `tool_calls` (tools/): grammar-constrained for "required" and a named
 * function, parsed by --tool-call-parser for "auto".
 */
import type { TokenLogprob } from "../engine/types";
import { contentText, readMessages, renderMessages } from "./chatMessages";
import { invalidParam, jsonResponse } from "./errors";
import type { GenerationRun, PromptJob } from "./generationRun";
import { chunkUsage, collectChoices, startGeneration, streamFailed, usage } from "./generationRun";
import { TokenStrings, chatLogprobs, vllmPromptLogprobs } from "./logprobs";
import type { ChatCompletionsBody } from "./schemas/chatSchema";
import type { SamplingBase } from "./samplingFields";
import { templateTools, toolMessages, toolTemplateText } from "./tools/toolMessages";
import type { ToolPlan } from "./tools/toolRequest";
import { readToolPlan, toolConstraint } from "./tools/toolRequest";
import { ToolStream, toolFinishReason, toolMessage } from "./tools/toolResponse";
import type { StreamParams } from "./samplingFields";
import { readSamplingParams, readStreamParams, settleMaxTokens } from "./samplingFields";
import type { ServerContext } from "./serverContext";
import { newId, readModel, unixNow } from "./serverContext";
import type { RequestTrace } from "./requestTrace";
import { sseResponse } from "./sse";
import { checkChatExtras, readTruncation, truncatePrompt } from "./vllmParams";

interface ChatPlan {
  model: string;
  job: PromptJob;
  n: number;
  /** Alternatives per token when logprobs were asked for. */
  topLogprobs?: number;
  /** With echo: the last assistant message, which the answer continues. */
  echoText: string;
  stream: StreamParams;
  /** vLLM's prompt_logprobs: alternatives per prompt token, when asked. */
  promptLogprobs?: number;
  /** The request's tools, when it has some. */
  tools: ToolPlan | null;
}

/** Reads the tools and, for "required" or a named function, puts their grammar on the sampling. */
function readTools(body: ChatCompletionsBody, sampling: SamplingBase): ToolPlan | null {
  const tools = readToolPlan(body);
  const constraint = tools ? toolConstraint(tools) : undefined;
  if (constraint && sampling.structured)
    throw invalidParam("tool_choice", "A required or named tool_choice constrains the output already: it cannot be combined with response_format or structured_outputs.");
  if (constraint) sampling.structured = constraint;
  return tools;
}


async function planChat(body: ChatCompletionsBody, ctx: ServerContext): Promise<ChatPlan> {
  const model = readModel(body.model, ctx);
  const messages = readMessages(body.messages);
  const { sampling, maxTokens, maxTokensCap, n } = readSamplingParams(body, ctx);
  const logprobs = body.logprobs ?? false;
  const topLogprobs = body.top_logprobs;
  if (topLogprobs !== undefined && !logprobs)
    throw invalidParam("top_logprobs", "'top_logprobs' needs 'logprobs' set to true.");
  const continueFinal = body.continue_final_message ?? false;
  const addGenerationPrompt = body.add_generation_prompt ?? !continueFinal;
  const extra = body.chat_template_kwargs;
  const truncation = readTruncation(body.truncate_prompt_tokens, ctx.engine.maxModelLen);
  const promptLogprobs = body.prompt_logprobs;
  const echo = body.echo ?? false;
  const tools = readTools(body, sampling);
  const stream = readStreamParams(body);
  checkChatExtras(addGenerationPrompt, continueFinal, promptLogprobs, stream.stream);

  const offered = tools && tools.choice !== "none" ? tools.tools : [];
  const toolTurns = toolMessages(messages, offered, toolTemplateText(ctx.tokenizer, ctx.chatTemplate, offered));
  const rendered = await renderMessages(ctx.tokenizer, toolTurns.messages, {
    template: ctx.chatTemplate, addGenerationPrompt, continueFinalMessage: continueFinal, extra, maxChars: ctx.maxPromptChars,
    tools: toolTurns.passTools ? templateTools(offered) : undefined,
  });
  rendered.ids = truncatePrompt(rendered.ids, truncation);
  const max = settleMaxTokens(maxTokens, maxTokensCap, rendered.ids.length, ctx.engine.maxModelLen, "messages");
  if (sampling.minTokens !== undefined && sampling.minTokens > max)
    throw invalidParam("min_tokens", "'min_tokens' must not exceed max tokens.");
  const job: PromptJob = { promptIds: rendered.ids, sampling: { ...sampling, maxTokens: max } };
  // The engine returns the sampled token's logprob alongside its top-K, so ask for >= 1.
  if (logprobs) job.sampling.logprobs = Math.max(1, topLogprobs ?? 0);
  if (promptLogprobs !== undefined) job.sampling.promptLogprobs = promptLogprobs;
  const last = messages[messages.length - 1]!;
  const echoText = echo && last.role === "assistant" ? contentText(last) : "";
  return { model, job, n, topLogprobs: logprobs ? (topLogprobs ?? 0) : undefined, echoText, stream, promptLogprobs, tools };
}

/** Handles POST /v1/chat/completions with its parsed JSON body. */
export async function handleChatCompletions(ctx: ServerContext, body: ChatCompletionsBody, trace: RequestTrace): Promise<Response> {
  const plan = await planChat(body, ctx);
  const id = newId("chatcmpl");
  const created = unixNow();
  trace.responseId = id;
  trace.stream = plan.stream.stream;
  const run = await startGeneration(ctx, id, [plan.job], trace);
  const strings = new TokenStrings(ctx.tokenizer);
  const formatLogprobs = (lps: TokenLogprob[] | undefined) =>
    plan.topLogprobs === undefined ? null : chatLogprobs(lps ?? [], plan.topLogprobs, strings);
  const promptTokens = plan.job.promptIds.length;

  if (plan.stream.stream) {
    const toolStreams = plan.tools ? Array.from({ length: plan.n }, () => new ToolStream(plan.tools!, ctx.toolCallParser)) : null;
    return sseResponse(streamChunks(plan, run, id, created, promptTokens, formatLogprobs, toolStreams), run.abort, (e) => streamFailed(ctx, trace, e));
  }
  const results = await collectChoices(run, plan.n);
  const choices = results.map((r, index) => {
    const message = plan.tools ? toolMessage(plan.tools, ctx.toolCallParser, r.text) : { content: plan.echoText + r.text };
    return {
      index,
      message: { role: "assistant", ...message },
      logprobs: formatLogprobs(r.logprobs),
      finish_reason: toolFinishReason(message, r.finishReason),
      stop_reason: r.stopReason,
    };
  });
  const completionTokens = results.reduce((s, r) => s + r.tokenCount, 0);
  const promptLogprobs = plan.promptLogprobs === undefined ? {} : { prompt_logprobs: vllmPromptLogprobs(results[0]?.promptLogprobs ?? [], plan.promptLogprobs, strings) };
  // One prompt: cached tokens as its first sample found them.
  const totals = usage(promptTokens, completionTokens, results[0]?.cachedTokens ?? 0);
  return jsonResponse({ id, object: "chat.completion", created, model: plan.model, choices, usage: totals, ...promptLogprobs });
}

async function* streamChunks(
  plan: ChatPlan,
  run: GenerationRun,
  id: string,
  created: number,
  promptTokens: number,
  formatLogprobs: (lps: TokenLogprob[] | undefined) => unknown,
  toolStreams: ToolStream[] | null,
): AsyncGenerator<unknown> {
  let completionTokens = 0;
  let cachedTokens = 0;
  const chunk = (choice: Record<string, unknown>) => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: plan.model,
    choices: [choice],
    ...chunkUsage(plan.stream, promptTokens, completionTokens, cachedTokens),
  });
  for (let index = 0; index < plan.n; index++)
    yield chunk({ index, delta: { role: "assistant", content: plan.echoText }, logprobs: null, finish_reason: null });
  for await (const { choice, delta } of run.deltas) {
    completionTokens += delta.tokenIds.length;
    if (choice === 0) cachedTokens += delta.cachedTokens ?? 0;
    const hasLogprobs = plan.topLogprobs !== undefined && (delta.logprobs?.length ?? 0) > 0;
    const tools = toolStreams?.[choice];
    if (tools) {
      const out = tools.push(delta.text, delta.finishReason !== undefined);
      if (!out && !delta.finishReason && !hasLogprobs) continue;
      yield chunk({
        index: choice,
        delta: out ?? {},
        logprobs: formatLogprobs(delta.logprobs),
        finish_reason: delta.finishReason === "stop" && tools.madeCalls ? "tool_calls" : (delta.finishReason ?? null),
        stop_reason: delta.stopReason ?? null,
      });
      continue;
    }
    if (delta.text === "" && !hasLogprobs && !delta.finishReason) continue;
    yield chunk({
      index: choice,
      delta: delta.text === "" && !hasLogprobs ? {} : { content: delta.text },
      logprobs: formatLogprobs(delta.logprobs),
      finish_reason: delta.finishReason ?? null,
      stop_reason: delta.stopReason ?? null,
    });
  }
  if (plan.stream.includeUsage)
    yield { id, object: "chat.completion.chunk", created, model: plan.model, choices: [], usage: usage(promptTokens, completionTokens, cachedTokens) };
}
