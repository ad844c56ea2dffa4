/**
 * The event stream of a streamed response, in OpenAI's order and shapes, each event with its
 * `sequence_number`:
 *   response.created → response.in_progress →
 *   message:        response.output_item.added → response.content_part.added →
 *                   response.output_text.delta … → response.output_text.done →
 *                   response.content_part.done → response.output_item.done
 *   function_call:  response.output_item.added → response.function_call_arguments.delta … →
 *                   response.function_call_arguments.done → response.output_item.done
 *   → response.completed | response.incomplete
 * Items open as their first text comes, one at a time (a message closes when a call starts); a
 * response that produced nothing still has its empty message. With tools, text goes through
 * ToolStream: a named function's arguments stream as they come, other calls come whole at the end.
 * An error after the stream began is an `error` event (responsesSseStyle), and the stream ends.
 */
import type { TokenLogprob } from "../../engine/types";
import type { ApiError } from "../errors";
import type { GenerationRun } from "../generationRun";
import type { ChatTokenLogprob } from "../logprobs";
import type { SseStyle } from "../sse";
import type { ToolDelta, ToolStream } from "../tools/toolResponse";
import type { FunctionCall, ResponseState, ResponseStatus } from "./responseObject";
import { functionCallItem, messageItem, outputText, responseBody, responseId, statusOf } from "./responseObject";
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

type Event = Record<string, unknown>;

/** Opens, fills and closes the output items of one stream, in order. */
class OutputItems {
  private next = 0;
  /** The message's output index while it is open. */
  private message: number | null = null;
  private readonly open: { fc: FunctionCall; index: number }[] = [];

  constructor(
    private readonly state: ResponseState,
    private readonly event: (type: string, fields: Event) => Event,
  ) {}

  private messageAt(index: number) {
    return { item_id: this.state.messageId, output_index: index, content_index: 0 };
  }

  text(delta: string, logprobs: ChatTokenLogprob[]): Event[] {
    const out: Event[] = [];
    const index = this.message ?? this.openMessage(out);
    this.state.text += delta;
    out.push(this.event("response.output_text.delta", { ...this.messageAt(index), delta, logprobs }));
    return out;
  }

  /** A tool-call piece: the first of a call (with its id and name) opens its item. */
  call(piece: NonNullable<ToolDelta["tool_calls"]>[number]): Event[] {
    const out: Event[] = [];
    if (piece.id !== undefined) {
      this.closeMessage(out, "completed");
      this.closeCalls(out, "completed");
      const fc: FunctionCall = { itemId: responseId("fc"), call: { id: piece.id, type: "function", function: { name: piece.function.name ?? "", arguments: "" } } };
      this.state.calls.push(fc);
      this.open.push({ fc, index: this.next++ });
      out.push(this.event("response.output_item.added", { output_index: this.open.at(-1)!.index, item: functionCallItem(fc, "in_progress") }));
    }
    const current = this.open.at(-1);
    if (current && piece.function.arguments !== "") {
      current.fc.call.function.arguments += piece.function.arguments;
      out.push(this.event("response.function_call_arguments.delta", { item_id: current.fc.itemId, output_index: current.index, delta: piece.function.arguments }));
    }
    return out;
  }

  /** Closes what is open; a response with no item gets its empty message. */
  finish(status: ResponseStatus): Event[] {
    const out: Event[] = [];
    if (this.next === 0) this.openMessage(out);
    this.closeMessage(out, status);
    this.closeCalls(out, status);
    return out;
  }

  private openMessage(out: Event[]): number {
    this.closeCalls(out, "completed");
    const index = (this.message = this.next++);
    out.push(this.event("response.output_item.added", { output_index: index, item: messageItem(this.state, "in_progress", false) }));
    out.push(this.event("response.content_part.added", { ...this.messageAt(index), part: outputText("") }));
    return index;
  }

  private closeMessage(out: Event[], status: ResponseStatus): void {
    if (this.message === null) return;
    const at = this.messageAt(this.message);
    const { text, logprobs } = this.state;
    out.push(this.event("response.output_text.done", { ...at, text, logprobs }));
    out.push(this.event("response.content_part.done", { ...at, part: outputText(text, logprobs) }));
    out.push(this.event("response.output_item.done", { output_index: this.message, item: messageItem(this.state, status, true) }));
    this.message = null;
  }

  private closeCalls(out: Event[], status: ResponseStatus): void {
    for (const { fc, index } of this.open.splice(0)) {
      const { name, arguments: args } = fc.call.function;
      out.push(this.event("response.function_call_arguments.done", { item_id: fc.itemId, output_index: index, name, arguments: args }));
      out.push(this.event("response.output_item.done", { output_index: index, item: functionCallItem(fc, status) }));
    }
  }
}

/** The events of one streamed response; `state` is filled in as it goes. `tools`: the plan's tool stream, when it has tools. */
export async function* responseEvents(
  plan: ResponsesPlan,
  state: ResponseState,
  run: GenerationRun,
  counter: EventCounter,
  formatLogprobs: (lps: TokenLogprob[] | undefined) => ChatTokenLogprob[],
  tools: ToolStream | null,
): AsyncGenerator<Event> {
  const event = (type: string, fields: Event) => ({ type, sequence_number: counter.next++, ...fields });
  const items = new OutputItems(state, event);
  yield event("response.created", { response: responseBody(plan, state, false) });
  yield event("response.in_progress", { response: responseBody(plan, state, false) });
  for await (const { delta } of run.deltas) {
    state.outputTokens += delta.tokenIds.length;
    if (delta.cachedTokens !== undefined) state.cachedTokens = delta.cachedTokens;
    const logprobs = formatLogprobs(delta.logprobs);
    state.logprobs.push(...logprobs);
    if (delta.finishReason) state.finishReason = delta.finishReason;
    if (!tools) {
      if (delta.text !== "" || logprobs.length > 0) yield* items.text(delta.text, logprobs);
      continue;
    }
    const out = tools.push(delta.text, delta.finishReason !== undefined);
    if (out?.content) yield* items.text(out.content, logprobs);
    for (const piece of out?.tool_calls ?? []) yield* items.call(piece);
  }
  const status = statusOf(state.finishReason);
  yield* items.finish(status);
  yield event(status === "completed" ? "response.completed" : "response.incomplete", { response: responseBody(plan, state, true) });
}
