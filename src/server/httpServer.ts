/**
 * The OpenAI-compatible HTTP server (Elysia routes under our own Bun.serve):
 *   GET  /v1/models, /v1/models/:model       POST /v1/completions, /v1/chat/completions, /v1/responses
 *   POST /tokenize, /detokenize              GET  /health, /metrics, /version
 *   GET  /openapi.json, /docs (the OpenAPI document of the request schemas, and a page to read it)
 * Every request passes through `dispatch`: it gets an id (the client's X-Request-Id when sane,
 * echoed on the response), the API key check (every route but /health), and one access-log line
 * once it is over (for a stream: after its last token). POST bodies are validated by Elysia against
 * their TypeBox schemas (schemas/): a failure is OpenAI's 400 naming the field (schemaErrors.ts). /health is 200 while the engine is alive
 * and the server is not draining, else 503 (see health.ts). Every error is an OpenAI-shaped JSON
 * body; unexpected ones are logged here and answered with a generic 500.
 * Every client is bounded: its body's time (408), idleness, open connections (clientBounds.ts) and a
 * stream's unread output (streamBuffer.ts). HTTP/1.1 pipelining is not supported: Bun (1.2.23 to
 * 1.4.5) closes a connection that sends a request while one is being answered, aborting that one.
 */
import type { Server } from "bun";
import { openapi } from "@elysiajs/openapi";
import type { Static, TObject } from "@sinclair/typebox";
import { Elysia, ParseError, ValidationError } from "elysia";
import { Logger as TextLogger, errorFields } from "../ops/logger";
import pkg from "../../package.json";
import { handleChatCompletions } from "./chatCompletions";
import { handleCompletions } from "./completions";
import { handleResponses } from "./responses/handleResponses";
import { addInfoRoutes } from "./infoRoutes";
import { ApiError, errorResponse, internalError, routeNotFound, shuttingDown, unauthorized } from "./errors";
import { EngineHealth } from "./health";
import { IgnoredFields } from "./ignoredFields";
import { samplingDefaultsFrom } from "./samplingDefaults";
import { ServerMetrics } from "./metrics";
import { ClientBounds } from "./clientBounds";
import { CorsPolicy } from "./cors";
import { DEFAULT_MAX_CONNECTIONS } from "./connectionLimit";
import { OpenRequests } from "./openRequests";
import { DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES, readJsonObject } from "./requestBody";
import { keyMatches, rawPath, routable } from "./requestGate";
import { RequestTrace, requestIdOf } from "./requestTrace";
import { maxPromptChars } from "./textLimit";
import type { ServerContext } from "./serverContext";
import { DEFAULT_STREAM_BUFFER_BYTES, DEFAULT_STREAM_STALL_S } from "./streamBuffer";
import { handleDetokenize, handleTokenize } from "./tokenizeRoutes";
import { ChatCompletionsBody } from "./schemas/chatSchema";
import { CompletionsBody } from "./schemas/completionsSchema";
import { ResponsesBody } from "./schemas/responsesSchema";
import { schemaError } from "./schemas/schemaErrors";
import { DetokenizeBody, TokenizeBody } from "./schemas/tokenizeSchema";
import { validatedBody } from "./schemas/validatedBody";
import type { CreateServerOptions, DrainResult, FastGenServer } from "./serverTypes";

type Handler<S extends TObject> = (body: Static<S>, trace: RequestTrace) => Response | Promise<Response>;

/** Longest path kept in a trace (the log line), in characters. */
const MAX_LOGGED_PATH = 256;
const GENERATION_PATHS = new Set(["/v1/completions", "/v1/chat/completions", "/v1/responses"]);
/** Routes any client may read, API key or not: the API's description holds nothing private. */
const PUBLIC_PATHS = new Set(["/health", "/openapi.json", "/docs"]);
/** Bun's default idleTimeout, in seconds. */
export const DEFAULT_IDLE_TIMEOUT_S = 10;

/** Builds the app; nothing listens until `listen`. */
export function createServer(options: CreateServerOptions): FastGenServer {
  const { engine } = options;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const logger = options.logger ?? new TextLogger("text");
  const ctx: ServerContext = {
    engine,
    tokenizer: engine.tokenizer,
    modelName: options.servedModelName ?? engine.modelName,
    chatTemplate: options.chatTemplate,
    toolCallParser: options.toolCallParser ?? "hermes",
    maxBodyBytes,
    maxPromptChars: maxPromptChars(engine.tokenizer, engine.maxModelLen),
    maxQueue: options.maxQueue ?? Infinity,
    metrics: new ServerMetrics(),
    health: new EngineHealth(engine),
    createdAt: Math.floor(Date.now() / 1000),
    logger,
    draining: false,
    ignoredFields: new IgnoredFields(logger),
    samplingDefaults: samplingDefaultsFrom(engine.tokenizer.generationConfig ?? {}, options.generationConfig),
    streamLimits: {
      maxBytes: options.streamLimits?.maxBytes ?? DEFAULT_STREAM_BUFFER_BYTES,
      stallMs: options.streamLimits?.stallMs ?? DEFAULT_STREAM_STALL_S * 1000,
    },
  };
  const apiKey = options.apiKey ? Buffer.from(options.apiKey) : null;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_S * 1000;
  const idleTimeoutS = options.idleTimeoutS ?? DEFAULT_IDLE_TIMEOUT_S;
  const traces = new WeakMap<Request, RequestTrace>();
  const cors = options.allowedOrigins?.length ? new CorsPolicy(options.allowedOrigins) : null;
  const open = new OpenRequests();
  const bounds = new ClientBounds(options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, idleTimeoutS);
  const onEnd = (trace: RequestTrace) => {
    open.delete(trace);
    bounds.ended(trace);
    if (options.accessLog) logger.out("request", trace.fields());
  };
  const fail = (request: Request, err: ApiError): Response => {
    const trace = traces.get(request);
    if (trace) {
      trace.errorType = err.type;
      trace.errorCode = err.code ?? undefined;
    }
    return errorResponse(err);
  };

  /** Answers, turning thrown errors into OpenAI errors, and counts the status. */
  const respond = async (endpoint: string, request: Request, fn: () => Response | Promise<Response>): Promise<Response> => {
    let res: Response;
    try {
      res = await fn();
    } catch (e) {
      if (!(e instanceof ApiError)) logger.error(`${endpoint} failed`, { request_id: traces.get(request)?.id, ...errorFields(e) });
      res = fail(request, e instanceof ApiError ? e : internalError());
    }
    ctx.metrics.countRequest(endpoint, res.status);
    return res;
  };
  // normalize off: a body reaches its handler as sent (unknown fields are logged, not stripped).
  const app = new Elysia({ normalize: false })
    .use(
      openapi({
        path: "/docs",
        specPath: "/openapi.json",
        documentation: { info: { title: "FastGen", version: pkg.version, description: "OpenAI-compatible API (with vLLM's extras)." } },
      }),
    )
    .onError(({ code, error, request }) => {
      if (code === "NOT_FOUND") {
        ctx.metrics.countRequest("unknown", 404);
        return fail(request, routeNotFound(request.method, rawPath(request.url)));
      }
      // A body refused before its handler: by our reader (the ParseError's cause) or by its schema.
      const refused =
        error instanceof ParseError && error.cause instanceof ApiError ? error.cause
        : error instanceof ValidationError ? schemaError(error.all, error.value)
        : null;
      if (refused) {
        ctx.metrics.countRequest(rawPath(request.url), refused.status);
        return fail(request, refused);
      }
      logger.error("unhandled server error", errorFields(error));
      return fail(request, internalError());
    });
  addInfoRoutes(app, ctx, respond);

  /** POST routes: the body is read (under the size limit) and validated against `schema` first. */
  const readBody = (request: Request) => readJsonObject(request, maxBodyBytes, bodyTimeoutMs);
  const post = <S extends TObject>(path: string, schema: S, handler: Handler<S>) =>
    app.post(
      path,
      ({ request, body }) =>
        respond(path, request, () => {
          const trace = traces.get(request)!;
          if (GENERATION_PATHS.has(path)) bounds.generating(trace);
          return handler(body as Static<S>, trace);
        }),
      validatedBody(schema, readBody, (names) => ctx.ignoredFields.note(path, names)),
    );
  post("/v1/completions", CompletionsBody, (body, trace) => handleCompletions(ctx, body, trace));
  post("/v1/chat/completions", ChatCompletionsBody, (body, trace) => handleChatCompletions(ctx, body, trace));
  post("/v1/responses", ResponsesBody, (body, trace) => handleResponses(ctx, body, trace));
  post("/tokenize", TokenizeBody, (body) => handleTokenize(ctx, body));
  post("/detokenize", DetokenizeBody, (body) => handleDetokenize(ctx, body));

  /** Every request: id, auth, drain, the route, then X-Request-Id on the answer and the trace closed. */
  async function dispatch(received: Request, server: Server<unknown>): Promise<Response> {
    const request = routable(received);
    const path = rawPath(request.url);
    const trace = new RequestTrace(requestIdOf(request.headers), request.method, path.slice(0, MAX_LOGGED_PATH), request.signal, onEnd);
    traces.set(request, trace);
    open.add(trace);
    const refused = bounds.arrive(trace, received, server);
    let res: Response;
    const preflight = refused ? null : (cors?.preflight(request) ?? null);
    if (preflight) {
      ctx.metrics.countRequest("preflight", preflight.status);
      res = preflight;
    } else if (refused) {
      ctx.metrics.countRequest("too_many_connections", 503);
      res = fail(request, refused);
    } else if (apiKey && !PUBLIC_PATHS.has(path) && !keyMatches(request.headers.get("authorization"), apiKey)) {
      ctx.metrics.countRequest("unauthorized", 401);
      res = fail(request, unauthorized());
    } else if (ctx.draining && request.method === "POST" && GENERATION_PATHS.has(path)) {
      ctx.metrics.countRequest(path, 503);
      res = fail(request, shuttingDown());
    } else {
      try {
        res = await app.handle(request);
      } catch (e) {
        logger.error("unhandled server error", { request_id: trace.id, ...errorFields(e) });
        res = fail(request, internalError());
      }
    }
    try {
      res.headers.set("x-request-id", trace.id);
    } catch {
      res = new Response(res.body, res); // immutable headers (a fetched Response): copy it
      res.headers.set("x-request-id", trace.id);
    }
    cors?.decorate(request, res);
    if (ctx.draining) res.headers.set("connection", "close");
    trace.closesConnection = res.headers.get("connection")?.toLowerCase() === "close" || request.headers.get("connection")?.toLowerCase() === "close";
    trace.responded(res.status);
    return res;
  }

  let bun: Server<unknown> | null = null;
  return {
    app,
    context: ctx,
    get openRequests() {
      return open.size;
    },
    async listen(host: string, port: number) {
      bun = Bun.serve({
        hostname: host,
        port,
        // Our own 413 (a JSON error) answers bodies over maxBodyBytes; Bun's cuts the rest.
        maxRequestBodySize: Math.max(maxBodyBytes + 1, 128 * 1024 * 1024),
        idleTimeout: idleTimeoutS,
        fetch: dispatch,
      });
      bounds.attach(bun);
      const shown = host.includes(":") ? `[${host}]` : host;
      return { url: `http://${shown}:${bun.port}`, port: bun.port! };
    },
    async drain(timeoutMs: number, graceMs = 2000) {
      ctx.draining = true;
      const server = bun;
      // No new connections; each open one closes once its response is sent (Bun's promise).
      const closed = server?.stop(false) ?? Promise.resolve();
      const result: DrainResult = { open: open.size, stopped: 0, cut: 0 };
      if (!(await open.idle(timeoutMs))) {
        for (const trace of open) {
          if (!trace.stopGeneration) continue;
          trace.stopGeneration();
          result.stopped++;
        }
        await open.idle(graceMs);
      }
      result.cut = open.size;
      // A request is over when its generation is; its stream's last events (the final tokens of
      // every choice, [DONE]) may still be on their way to the socket. Cutting them there lost the
      // ends of n>1 streams: wait for Bun to send them, within the grace.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      await server?.stop(true);
      bun = null;
      return result;
    },
    async stop() {
      ctx.draining = true;
      await bun?.stop(true);
      bun = null;
    },
  };
}
