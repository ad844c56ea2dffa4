/**
 * The body of POST /v1/responses checked into a plan: the subset of OpenAI's Responses API that
 * the Vercel AI SDK's `openai(model)` and LangChain's `useResponsesApi` send for text generation.
 * Nothing is stored: `store: true`, `previous_response_id`, `conversation` and `background` are a
 * 400. Structured output (`text.format` json_schema/json_object) and function tools run as in
 * chat (responsesTools.ts); built-in tools are a 400 naming them, never ignored.
 */
import type { ChatMessage } from "../../tokenizer/chatTemplate";
import { unsupportedParam } from "../errors";
import type { SamplingBase } from "../samplingFields";
import { withSamplingDefaults } from "../samplingDefaults";
import type { ResponsesBody } from "../schemas/responsesSchema";
import type { ServerContext } from "../serverContext";
import { readModel } from "../serverContext";
import { readAllowedTokenIds } from "../vllmParams";
import type { ToolPlan } from "../tools/toolRequest";
import { readResponsesInput } from "./responsesInput";
import { readResponsesConstraint } from "./responsesTools";

/** What a Responses request asks for. */
export interface ResponsesPlan {
  model: string;
  messages: ChatMessage[];
  instructions: string | null;
  sampling: SamplingBase;
  /** max_output_tokens, when given (capped by generation_config's max_new_tokens). */
  maxOutputTokens?: number;
  maxTokensCap: number;
  stream: boolean;
  /** Alternatives per token when `include` asks for message.output_text.logprobs. */
  topLogprobs?: number;
  /** The function tools offered, when there are some. */
  tools: ToolPlan | null;
  /** Echoed in the response object. */
  echo: {
    /** text.format as given (default text). */
    format: Record<string, unknown>; metadata: Record<string, string>; user: string | null; parallelToolCalls: boolean; maxOutputTokens: number | null };
}

/** Fields that need state FastGen does not keep or a reasoning model: a 400 naming them. */
function refuseUnsupported(b: ResponsesBody): void {
  if (b.store === true) throw unsupportedParam("store", "FastGen stores no responses: send 'store': false or leave it out.");
  if (b.previous_response_id !== undefined)
    throw unsupportedParam("previous_response_id", "FastGen stores no responses: send the whole conversation in 'input'.");
  if (b.conversation !== undefined) throw unsupportedParam("conversation", "FastGen stores no conversations: send the whole conversation in 'input'.");
  if (b.background === true) throw unsupportedParam("background", "Background responses need stored responses.");
  if (b.prompt !== undefined) throw unsupportedParam("prompt", "Stored prompt templates are not available: send 'input' and 'instructions'.");
  if (b.reasoning && Object.values(b.reasoning).some((v) => v !== null && v !== undefined))
    throw unsupportedParam("reasoning", "FastGen serves no reasoning model.");
  if (b.truncation !== undefined && b.truncation !== "disabled") throw unsupportedParam("truncation", 'Only "disabled" is supported: a too long input is a 400.');
  const tier = b.service_tier;
  if (tier !== undefined && tier !== "auto" && tier !== "default") throw unsupportedParam("service_tier", 'Only "auto" and "default" are supported.');
  // Hints with no effect here: max_tool_calls, safety_identifier, prompt_cache_key(_retention), stream_options.
}

/** Logprobs are given when `include` names them; top_logprobs alternatives each. */
function readLogprobs(b: ResponsesBody): number | undefined {
  const include = typeof b.include === "string" ? [b.include] : (b.include ?? []);
  // Other include values name items FastGen never produces (reasoning, built-in tool calls): nothing to add.
  return include.includes("message.output_text.logprobs") ? (b.top_logprobs ?? 0) : undefined;
}

/** Plans a validated Responses request (400 naming the field for anything it cannot run). */
export function readResponsesRequest(b: ResponsesBody, ctx: ServerContext): ResponsesPlan {
  const model = readModel(b.model, ctx);
  const messages = readResponsesInput(b.instructions, b.input);
  const cap = ctx.samplingDefaults.maxTokens ?? Infinity;
  const asked = b.max_output_tokens;
  const sampling: SamplingBase = {
    temperature: b.temperature,
    topP: b.top_p,
    // vLLM's extras, for clients that send them
    topK: b.top_k,
    minP: b.min_p,
    repetitionPenalty: b.repetition_penalty,
    seed: b.seed,
    allowedTokenIds: readAllowedTokenIds(b.allowed_token_ids, ctx.tokenizer.vocabSize),
    n: 1,
  };
  const constraint = readResponsesConstraint(b);
  if (constraint.structured) sampling.structured = constraint.structured;
  for (const k of Object.keys(sampling) as (keyof SamplingBase)[]) if (sampling[k] === undefined) delete sampling[k];
  const topLogprobs = readLogprobs(b);
  refuseUnsupported(b);
  return {
    model, messages, instructions: b.instructions ?? null, sampling: withSamplingDefaults(sampling, ctx.samplingDefaults),
    maxOutputTokens: asked === undefined ? undefined : Math.min(asked, cap), maxTokensCap: cap, stream: b.stream ?? false, topLogprobs, tools: constraint.tools,
    echo: { format: b.text?.format ?? { type: "text" }, metadata: b.metadata ?? {}, user: b.user ?? null, parallelToolCalls: b.parallel_tool_calls ?? true, maxOutputTokens: asked ?? null },
  };
}
