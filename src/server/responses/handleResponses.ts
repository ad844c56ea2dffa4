/**
 * POST /v1/responses: a Responses API request (responsesRequest.ts) rendered with the chat
 * template (tool turns and offered tools as chat renders them) and run as one generation;
 * answered as a `response` object, or streamed as its events (responsesStream.ts). Function
 * calls are read from the output as chat reads them (tools/toolResponse.ts). Nothing is stored.
 */
import type { TokenLogprob } from "../../engine/types";
import { renderMessages } from "../chatMessages";
import { jsonResponse } from "../errors";
import type { PromptJob } from "../generationRun";
import { collectChoices, startGeneration, streamFailed } from "../generationRun";
import { TokenStrings, chatLogprobs } from "../logprobs";
import type { RequestTrace } from "../requestTrace";
import { settleMaxTokens } from "../samplingFields";
import type { ServerContext } from "../serverContext";
import { sseResponse } from "../sse";
import { templateTools, toolMessages, toolTemplateText } from "../tools/toolMessages";
import { ToolStream, toolMessage } from "../tools/toolResponse";
import type { ResponseState } from "./responseObject";
import { responseBody, responseId } from "./responseObject";
import type { ResponsesBody } from "../schemas/responsesSchema";
import { readResponsesRequest } from "./responsesRequest";
import { responseEvents, responsesSseStyle } from "./responsesStream";

/** Handles POST /v1/responses with its parsed JSON body. */
export async function handleResponses(ctx: ServerContext, body: ResponsesBody, trace: RequestTrace): Promise<Response> {
  const plan = readResponsesRequest(body, ctx);
  const offered = plan.tools && plan.tools.choice !== "none" ? plan.tools.tools : [];
  const turns = toolMessages(plan.messages, offered, toolTemplateText(ctx.tokenizer, ctx.chatTemplate, offered));
  const rendered = await renderMessages(ctx.tokenizer, turns.messages, {
    template: ctx.chatTemplate, addGenerationPrompt: true, maxChars: ctx.maxPromptChars,
    tools: turns.passTools ? templateTools(offered) : undefined,
  });
  const maxTokens = settleMaxTokens(plan.maxOutputTokens, plan.maxTokensCap, rendered.ids.length, ctx.engine.maxModelLen, "input");
  const job: PromptJob = { promptIds: rendered.ids, sampling: { ...plan.sampling, maxTokens } };
  // The engine returns the sampled token's logprob alongside its top-K, so ask for >= 1.
  if (plan.topLogprobs !== undefined) job.sampling.logprobs = Math.max(1, plan.topLogprobs);
  const state: ResponseState = {
    id: responseId("resp"), messageId: responseId("msg"), createdAt: Math.floor(Date.now() / 1000),
    text: "", logprobs: [], inputTokens: rendered.ids.length, cachedTokens: 0, outputTokens: 0, finishReason: null, calls: [],
  };
  trace.responseId = state.id;
  trace.stream = plan.stream;
  const run = await startGeneration(ctx, state.id, [job], trace);
  const strings = new TokenStrings(ctx.tokenizer);
  const formatLogprobs = (lps: TokenLogprob[] | undefined) =>
    plan.topLogprobs === undefined ? [] : chatLogprobs(lps ?? [], plan.topLogprobs, strings).content;

  if (plan.stream) {
    const counter = { next: 0 };
    const tools = plan.tools ? new ToolStream(plan.tools, ctx.toolCallParser) : null;
    const events = responseEvents(plan, state, run, counter, formatLogprobs, tools);
    return sseResponse(events, run.abort, (e) => streamFailed(ctx, trace, e), responsesSseStyle(counter));
  }
  const [result] = await collectChoices(run, 1);
  const message = plan.tools ? toolMessage(plan.tools, ctx.toolCallParser, result!.text) : { content: result!.text };
  state.text = message.content ?? "";
  state.calls = (message.tool_calls ?? []).map((call) => ({ itemId: responseId("fc"), call }));
  state.logprobs = formatLogprobs(result!.logprobs);
  state.outputTokens = result!.tokenCount;
  state.cachedTokens = result!.cachedTokens;
  state.finishReason = result!.finishReason;
  return jsonResponse(responseBody(plan, state, true));
}

