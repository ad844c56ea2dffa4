/**
 * The body of POST /v1/responses checked into a plan: the subset of OpenAI's Responses API that
 * the Vercel AI SDK's `openai(model)` and LangChain's `useResponsesApi` send for text generation.
 * Nothing is stored: `store: true`, `previous_response_id`, `conversation` and `background` are a
 * 400. Structured output (`text.format` json_schema/json_object) and function tools need
 * grammar-constrained decoding, which FastGen does not have yet: a 400 naming them, never ignored.
 */
import type { ChatMessage } from "../../tokenizer/chatTemplate";
import { invalidParam, unsupportedParam } from "../errors";
import { RequestParams, describe } from "../requestParams";
import type { SamplingBase } from "../samplingFields";
import { withSamplingDefaults } from "../samplingDefaults";
import type { ServerContext } from "../serverContext";
import { readModel } from "../serverContext";
import { readAllowedTokenIds } from "../vllmParams";
import { readResponsesInput } from "./responsesInput";

/** Most alternatives per output token (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;
const NO_GRAMMAR = "It needs grammar-constrained decoding, which FastGen does not support yet.";

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
  /** Echoed in the response object. */
  echo: { metadata: Record<string, string>; user: string | null; parallelToolCalls: boolean; maxOutputTokens: number | null };
}

function readMetadata(p: RequestParams): Record<string, string> {
  const raw = p.object("metadata") ?? {};
  for (const [k, v] of Object.entries(raw))
    if (typeof v !== "string") throw invalidParam(`metadata.${k}`, `'metadata' values must be strings, got ${describe(v)} for '${k}'.`);
  return raw as Record<string, string>;
}

/** Fields that need state FastGen does not keep, tools, or structured output: a 400 naming them. */
function refuseUnsupported(p: RequestParams): void {
  if (p.boolean("store") === true)
    throw unsupportedParam("store", "FastGen stores no responses: send 'store': false or leave it out.");
  if (p.has("previous_response_id"))
    throw unsupportedParam("previous_response_id", "FastGen stores no responses: send the whole conversation in 'input'.");
  if (p.has("conversation")) throw unsupportedParam("conversation", "FastGen stores no conversations: send the whole conversation in 'input'.");
  if (p.boolean("background") === true) throw unsupportedParam("background", "Background responses need stored responses.");
  if (p.has("prompt")) throw unsupportedParam("prompt", "Stored prompt templates are not available: send 'input' and 'instructions'.");
  const tools = p.raw("tools");
  if (tools !== undefined && !(Array.isArray(tools) && tools.length === 0)) throw unsupportedParam("tools", `Function and built-in tools are not supported. ${NO_GRAMMAR}`);
  const choice = p.raw("tool_choice");
  if (choice !== undefined && choice !== "none" && choice !== "auto") throw unsupportedParam("tool_choice", 'Only "none" and "auto" (with no tools) are supported.');
  p.boolean("parallel_tool_calls");
  p.integer("max_tool_calls", { min: 0 });
  const text = p.object("text");
  const format = text?.format as Record<string, unknown> | null | undefined;
  if (format !== undefined && format !== null && format.type !== "text")
    throw unsupportedParam("text.format", `Only {"type": "text"} is supported, got ${describe(format.type)}. ${NO_GRAMMAR}`);
  const reasoning = p.object("reasoning");
  if (reasoning && Object.values(reasoning).some((v) => v !== null && v !== undefined))
    throw unsupportedParam("reasoning", "FastGen serves no reasoning model.");
  const truncation = p.string("truncation");
  if (truncation !== undefined && truncation !== "disabled") throw unsupportedParam("truncation", 'Only "disabled" is supported: a too long input is a 400.');
  const tier = p.string("service_tier");
  if (tier !== undefined && tier !== "auto" && tier !== "default") throw unsupportedParam("service_tier", 'Only "auto" and "default" are supported.');
  // Hints with no effect here: who is asking, and cache routing.
  p.string("safety_identifier");
  p.string("prompt_cache_key");
  p.string("prompt_cache_retention");
  p.object("stream_options");
}

/** Reads `include` and `top_logprobs`; logprobs are given when include names them. */
function readLogprobs(p: RequestParams): number | undefined {
  const include = p.stringList("include") ?? [];
  const top = p.integer("top_logprobs", { min: 0, max: MAX_TOP_LOGPROBS });
  // Other include values name items FastGen never produces (reasoning, tool calls): nothing to add.
  return include.includes("message.output_text.logprobs") ? (top ?? 0) : undefined;
}

/** Checks a Responses request body (400 naming the field for anything it cannot run). */
export function readResponsesRequest(body: Record<string, unknown>, ctx: ServerContext): ResponsesPlan {
  const p = new RequestParams(body);
  const model = readModel(p, ctx);
  const instructions = p.string("instructions");
  const messages = readResponsesInput(instructions, p.raw("input"));
  const cap = ctx.samplingDefaults.maxTokens ?? Infinity;
  const asked = p.integer("max_output_tokens", { min: 1 });
  const sampling: SamplingBase = {
    temperature: p.number("temperature", { min: 0, max: 2 }),
    topP: p.number("top_p", { min: 0, minExclusive: true, max: 1 }),
    // vLLM's extras, for clients that send them
    topK: p.integer("top_k", { min: -1 }),
    minP: p.number("min_p", { min: 0, max: 1 }),
    repetitionPenalty: p.number("repetition_penalty", { min: 0, minExclusive: true, max: 2 }),
    seed: p.integer("seed", { min: 0 }),
    allowedTokenIds: readAllowedTokenIds(p, ctx.tokenizer.vocabSize),
    n: 1,
  };
  for (const k of Object.keys(sampling) as (keyof SamplingBase)[]) if (sampling[k] === undefined) delete sampling[k];
  const topLogprobs = readLogprobs(p);
  const metadata = readMetadata(p);
  const user = p.string("user") ?? null;
  refuseUnsupported(p);
  const stream = p.boolean("stream") ?? false;
  p.ignoreUnknown(ctx.ignoredFields, "/v1/responses");
  return {
    model, messages, instructions: instructions ?? null, sampling: withSamplingDefaults(sampling, ctx.samplingDefaults),
    maxOutputTokens: asked === undefined ? undefined : Math.min(asked, cap), maxTokensCap: cap, stream, topLogprobs,
    echo: { metadata, user, parallelToolCalls: (body.parallel_tool_calls as boolean | undefined) ?? true, maxOutputTokens: asked ?? null },
  };
}
