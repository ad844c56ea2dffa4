/**
 * The Responses API's objects in OpenAI's shapes: the `response` (whole, or as a stream's
 * snapshots) and its output items: an assistant `message` with its `output_text` part, then the
 * `function_call`s the model made.
 *
 *   response { id: "resp_…", object: "response", status, output: [message?, function_call...], usage, ... }
 *     message { id: "msg_…", type: "message", role: "assistant", status, content: [output_text] }
 *       output_text { type: "output_text", text, annotations: [], logprobs: [] }
 *     function_call { id: "fc_…", type: "function_call", status, call_id: "call_…", name, arguments }
 *
 * The message is left out when the model only made calls.
 * A generation stopped by max_output_tokens is `incomplete` (reason "max_output_tokens").
 */
import type { FinishReason } from "../../engine/types";
import type { ChatTokenLogprob } from "../logprobs";
import type { ToolCall } from "../tools/toolResponse";
import type { ResponsesPlan } from "./responsesRequest";
import { echoToolChoice, echoTools } from "./responsesTools";

/** A response's status (OpenAI's values that FastGen produces). */
export type ResponseStatus = "in_progress" | "completed" | "incomplete";

/** Usage in the Responses API's shape. */
export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** What the stream has produced so far (or in all). */
export interface ResponseState {
  id: string;
  messageId: string;
  createdAt: number;
  text: string;
  logprobs: ChatTokenLogprob[];
  inputTokens: number;
  /** Input tokens the prefix cache held (prefix caching). */
  cachedTokens: number;
  outputTokens: number;
  finishReason: FinishReason | null;
  /** Function calls made, each with its item id (`fc_…`). */
  calls: FunctionCall[];
}

/** A function call the model made: the tool call and its output item's id. */
export interface FunctionCall {
  itemId: string;
  call: ToolCall;
}

/** Ids with OpenAI's prefixes (`resp_`, `msg_`). */
export const responseId = (prefix: "resp" | "msg" | "fc") => `${prefix}_${crypto.randomUUID().replace(/-/g, "")}`;

/** The status a finished generation gives its response. */
export function statusOf(finish: FinishReason | null): ResponseStatus {
  if (finish === null) return "in_progress";
  return finish === "stop" ? "completed" : "incomplete";
}

export function responseUsage(inputTokens: number, outputTokens: number, cachedTokens = 0): ResponseUsage {
  return {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: cachedTokens },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputTokens,
  };
}

/** The output_text part holding `text`. */
export function outputText(text: string, logprobs: ChatTokenLogprob[] = []) {
  return { type: "output_text", text, annotations: [], logprobs };
}

/** The assistant message item; `content` empty while it is being announced. */
export function messageItem(state: ResponseState, status: ResponseStatus, withContent: boolean) {
  return {
    id: state.messageId,
    type: "message",
    status,
    role: "assistant",
    content: withContent ? [outputText(state.text, state.logprobs)] : [],
  };
}

/** A function_call item; `arguments` as far as they have come while in progress. */
export function functionCallItem(fc: FunctionCall, status: ResponseStatus) {
  return { id: fc.itemId, type: "function_call", status, call_id: fc.call.id, name: fc.call.function.name, arguments: fc.call.function.arguments };
}

/** A finished response's output items: its message (unless it only made calls), then its calls. */
export function outputItems(state: ResponseState, status: ResponseStatus) {
  const message = state.text !== "" || state.calls.length === 0 ? [messageItem(state, status, true)] : [];
  return [...message, ...state.calls.map((fc) => functionCallItem(fc, status))];
}

/** The response object: in progress (no output yet) or finished (its message and usage). */
export function responseBody(plan: ResponsesPlan, state: ResponseState, done: boolean) {
  const status = done ? statusOf(state.finishReason) : "in_progress";
  const incomplete = status === "incomplete" ? { reason: state.finishReason === "length" ? "max_output_tokens" : "interrupted" } : null;
  const s = plan.sampling;
  return {
    id: state.id,
    object: "response",
    created_at: state.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: incomplete,
    instructions: plan.instructions,
    max_output_tokens: plan.echo.maxOutputTokens,
    max_tool_calls: null,
    model: plan.model,
    output: done ? outputItems(state, status) : [],
    parallel_tool_calls: plan.echo.parallelToolCalls,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: "default",
    store: false,
    temperature: s.temperature ?? 1,
    text: { format: plan.echo.format, verbosity: "medium" },
    tool_choice: echoToolChoice(plan.tools),
    tools: echoTools(plan.tools),
    top_logprobs: plan.topLogprobs ?? 0,
    top_p: s.topP ?? 1,
    truncation: "disabled",
    usage: done ? responseUsage(state.inputTokens, state.outputTokens, state.cachedTokens) : null,
    user: plan.echo.user,
    metadata: plan.echo.metadata,
  };
}
