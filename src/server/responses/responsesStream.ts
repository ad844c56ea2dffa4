/**
 * The event stream of a streamed response, in OpenAI's order and shapes, each event with its
 * `sequence_number`:
 *   response.created → response.in_progress → response.output_item.added →
 *   response.content_part.added → response.output_text.delta … → response.output_text.done →
 *   response.content_part.done → response.output_item.done → response.completed | response.incomplete
 * An error after the stream began is an `error` event (responsesErrorEvent), and the stream ends.
 */
import type { TokenLogprob } from "../../engine/types";
import type { ApiError } from "../errors";
import type { GenerationRun } from "../generationRun";
import type { ChatTokenLogprob } from "../logprobs";
import type { SseStyle } from "../sse";
import type { ResponseState } from "./responseObject";
import { messageItem, outputText, responseBody, statusOf } from "./responseObject";
import type { ResponsesPlan } from "./responsesRequest";

/** Numbers a stream's events (shared with its error event). */
export interface EventCounter {
  next: number;
}

/** SSE as the Responses API writes it: named events, no [DONE], errors as an `error` event. */
export function responsesSseStyle(counter: EventCounter): SseStyle {
  return {
    named: true,
    done: false,
    errorBody: (err: ApiError) => ({ type: "error", code: err.code, message: err.message, param: err.param, sequence_number: counter.next++ }),
  };
}

/** The events of one streamed response; `state` is filled in as it goes. */
export async function* responseEvents(
  plan: ResponsesPlan,
  state: ResponseState,
  run: GenerationRun,
  counter: EventCounter,
  formatLogprobs: (lps: TokenLogprob[] | undefined) => ChatTokenLogprob[],
): AsyncGenerator<Record<string, unknown>> {
  const event = (type: string, fields: Record<string, unknown>) => ({ type, sequence_number: counter.next++, ...fields });
  const at = { item_id: state.messageId, output_index: 0, content_index: 0 };
  yield event("response.created", { response: responseBody(plan, state, false) });
  yield event("response.in_progress", { response: responseBody(plan, state, false) });
  yield event("response.output_item.added", { output_index: 0, item: messageItem(state, "in_progress", false) });
  yield event("response.content_part.added", { ...at, part: outputText("") });
  for await (const { delta } of run.deltas) {
    state.outputTokens += delta.tokenIds.length;
    if (delta.cachedTokens !== undefined) state.cachedTokens = delta.cachedTokens;
    const logprobs = formatLogprobs(delta.logprobs);
    state.logprobs.push(...logprobs);
    if (delta.finishReason) state.finishReason = delta.finishReason;
    if (delta.text === "" && logprobs.length === 0) continue;
    state.text += delta.text;
    yield event("response.output_text.delta", { ...at, delta: delta.text, logprobs });
  }
  yield event("response.output_text.done", { ...at, text: state.text, logprobs: state.logprobs });
  yield event("response.content_part.done", { ...at, part: outputText(state.text, state.logprobs) });
  const status = statusOf(state.finishReason);
  yield event("response.output_item.done", { output_index: 0, item: messageItem(state, status, true) });
  yield event(status === "completed" ? "response.completed" : "response.incomplete", { response: responseBody(plan, state, true) });
}
