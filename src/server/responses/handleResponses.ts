/**
 * POST /v1/responses: a Responses API request (responsesRequest.ts) rendered with the chat
 * template and run as one generation; answered as a `response` object, or streamed as its events
 * (responsesStream.ts). Nothing is stored.
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
import type { ResponseState } from "./responseObject";
import { responseBody, responseId } from "./responseObject";
import type { ResponsesBody } from "../schemas/responsesSchema";
import { readResponsesRequest } from "./responsesRequest";
import { responseEvents, responsesSseStyle } from "./responsesStream";

/** Handles POST /v1/responses with its parsed JSON body. */
export async function handleResponses(ctx: ServerContext, body: ResponsesBody, trace: RequestTrace): Promise<Response> {
  const plan = readResponsesRequest(body, ctx);
  const rendered = await renderMessages(ctx.tokenizer, plan.messages, {
    template: ctx.chatTemplate, addGenerationPrompt: true, maxChars: ctx.maxPromptChars,
  });
  const maxTokens = settleMaxTokens(plan.maxOutputTokens, plan.maxTokensCap, rendered.ids.length, ctx.engine.maxModelLen, "input");
  const job: PromptJob = { promptIds: rendered.ids, sampling: { ...plan.sampling, maxTokens } };
  // The engine returns the sampled token's logprob alongside its top-K, so ask for >= 1.
  if (plan.topLogprobs !== undefined) job.sampling.logprobs = Math.max(1, plan.topLogprobs);
  const state: ResponseState = {
    id: responseId("resp"), messageId: responseId("msg"), createdAt: Math.floor(Date.now() / 1000),
    text: "", logprobs: [], inputTokens: rendered.ids.length, cachedTokens: 0, outputTokens: 0, finishReason: null,
  };
  trace.responseId = state.id;
  trace.stream = plan.stream;
  const run = await startGeneration(ctx, state.id, [job], trace);
  const strings = new TokenStrings(ctx.tokenizer);
  const formatLogprobs = (lps: TokenLogprob[] | undefined) =>
    plan.topLogprobs === undefined ? [] : chatLogprobs(lps ?? [], plan.topLogprobs, strings).content;

  if (plan.stream) {
    const counter = { next: 0 };
    const events = responseEvents(plan, state, run, counter, formatLogprobs);
    return sseResponse(events, run.abort, (e) => streamFailed(ctx, trace, e), responsesSseStyle(counter));
  }
  const [result] = await collectChoices(run, 1);
  state.text = result!.text;
  state.logprobs = formatLogprobs(result!.logprobs);
  state.outputTokens = result!.tokenCount;
  state.cachedTokens = result!.cachedTokens;
  state.finishReason = result!.finishReason;
  return jsonResponse(responseBody(plan, state, true));
}
