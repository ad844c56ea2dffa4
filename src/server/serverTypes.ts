/**
 * The HTTP server's public types: what createServer (httpServer.ts) takes, and the server it gives
 * back (listen, drain, stop).
 */
import type { AnyElysia } from "elysia";
import type { EngineClient } from "../engine/types";
import type { Logger } from "../ops/logger";
import type { GenerationConfigMode } from "./samplingDefaults";
import type { ServerContext } from "./serverContext";
import type { StreamLimits } from "./streamBuffer";
import type { ToolCallParserName } from "./tools/toolParsers";

/** Options of createServer (httpServer.ts). */
export interface CreateServerOptions {
  engine: EngineClient;
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** The model name clients send (default: engine.modelName). */
  servedModelName?: string;
  /** Jinja chat template text replacing the model's own. */
  chatTemplate?: string;
  /** The format tool_choice "auto" parses calls from (--tool-call-parser; default hermes). */
  toolCallParser?: ToolCallParserName;
  /** Largest request body accepted (default 8 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Generation requests held at once before 503 (default: unlimited; the engine's queue decides). */
  maxQueue?: number;
  /** Milliseconds a client has to send a whole request body before 408 (default 30 s). */
  bodyTimeoutMs?: number;
  /** Seconds a connection may be idle before it is closed (Bun's idleTimeout, 1-255; default 10). */
  idleTimeoutS?: number;
  /** Most open connections; a request on a new one past it gets 503 (default 4096). */
  maxConnections?: number;
  /** How much unread output a stream may hold, and for how long (default 4 MiB, 30 s). */
  streamLimits?: Partial<StreamLimits>;
  /** Where unexpected errors (and the access log) go (default: text on stderr). */
  logger?: Logger;
  /** One log line per request (default false; `fastgen serve` turns it on). */
  accessLog?: boolean;
  /** "auto" (default): unset sampling fields take generation_config.json's values, as in vLLM; "vllm": neutral defaults. */
  generationConfig?: GenerationConfigMode;
  /** Origins browsers may call from (CORS; "*" for any); default none: no CORS headers. */
  allowedOrigins?: readonly string[];
}

/** What {@link FastGenServer.drain} did. */
export interface DrainResult {
  /** Requests open when the drain began. */
  open: number;
  /** Generations stopped at the deadline (they ended with finish_reason "abort"). */
  stopped: number;
  /** Requests still open when the connections were closed (none unless something hung). */
  cut: number;
}

/** A created server: `listen` binds it, `drain` or `stop` closes it (the engine stays up: its owner shuts it down). */
export interface FastGenServer {
  app: AnyElysia;
  context: ServerContext;
  /** Requests being answered now; a stream counts until its generation is over. */
  readonly openRequests: number;
  listen(host: string, port: number): Promise<{ url: string; port: number }>;
  /**
   * Graceful stop: stops listening, answers new generation requests (on open connections) with 503,
   * lets open requests finish for up to `timeoutMs`, then stops their generations (finish_reason
   * "abort"), waits up to `graceMs` for their last bytes, and closes every connection.
   */
  drain(timeoutMs: number, graceMs?: number): Promise<DrainResult>;
  /** Closes at once, cutting open connections. */
  stop(): Promise<void>;
}
