/**
 * What every route handler shares: the engine, its tokenizer, the served name, limits, metrics,
 * the engine's health, the logger and whether the server is draining.
 */
import type { EngineClient } from "../engine/types";
import type { Logger } from "../ops/logger";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { modelNotFound } from "./errors";
import type { EngineHealth } from "./health";
import type { IgnoredFields } from "./ignoredFields";
import type { ServerMetrics } from "./metrics";
import type { SamplingDefaults } from "./samplingDefaults";
import type { StreamLimits } from "./streamBuffer";
import type { ToolCallParserName } from "./tools/toolParsers";

/** Per-server state handed to every handler. */
export interface ServerContext {
  engine: EngineClient;
  tokenizer: Tokenizer;
  /** The name clients use in `model` (--served-model-name, else the engine's). */
  modelName: string;
  /** A chat template that replaces the model's own (--chat-template). */
  chatTemplate?: string;
  /** The format tool_choice "auto" parses calls from (--tool-call-parser). */
  toolCallParser: ToolCallParserName;
  maxBodyBytes: number;
  /** Longest prompt text worth tokenizing (see textLimit.ts). */
  maxPromptChars: number;
  /** Generation requests the server holds at once before answering 503. */
  maxQueue: number;
  metrics: ServerMetrics;
  /** Whether the engine is alive (GET /health; generation is refused with 503 once it is not). */
  health: EngineHealth;
  /** Unix seconds the server started (the model's `created`). */
  createdAt: number;
  /** Diagnostics (unexpected errors) and, when on, the access log. */
  logger: Logger;
  /** True once a shutdown began: new generation requests and /health get 503. */
  draining: boolean;
  /** Sampling defaults from generation_config.json for fields a request leaves unset (--generation-config). */
  samplingDefaults: SamplingDefaults;
  /** Logs the unknown request fields that are ignored (once per name). */
  ignoredFields: IgnoredFields;
  /** How much unread output a stream may hold, and for how long, before it is aborted (streamBuffer.ts). */
  streamLimits: StreamLimits;
}

/** Reads `model`: absent means the served model; any other name is a 404. */
export function readModel(model: string | undefined, ctx: ServerContext): string {
  if (model !== undefined && model !== ctx.modelName) throw modelNotFound(model);
  return ctx.modelName;
}

/** A fresh id with OpenAI's prefixes (`cmpl-`, `chatcmpl-`). */
export function newId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replace(/-/g, "")}`;
}

/** Unix seconds now. */
export const unixNow = () => Math.floor(Date.now() / 1000);
