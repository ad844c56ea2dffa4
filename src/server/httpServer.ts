/**
 * The OpenAI-compatible HTTP server (Elysia on Bun.serve):
 *   GET  /v1/models, /v1/models/:model       POST /v1/completions, /v1/chat/completions
 *   POST /tokenize, /detokenize              GET  /health, /metrics, /version
 * /health is 200 while the engine is alive, else 503 (see health.ts). With an API key every route
 * but /health wants `Authorization: Bearer <key>`. Every error is an OpenAI-shaped JSON body;
 * unexpected ones are logged here and answered with a generic 500.
 */
import { timingSafeEqual } from "node:crypto";
import type { AnyElysia } from "elysia";
import { Elysia } from "elysia";
import type { EngineClient } from "../engine/types";
import pkg from "../../package.json";
import { handleChatCompletions } from "./chatCompletions";
import { handleCompletions } from "./completions";
import { ApiError, errorResponse, internalError, jsonResponse, modelNotFound, routeNotFound, unauthorized } from "./errors";
import { EngineHealth, engineUnavailable } from "./health";
import { ServerMetrics } from "./metrics";
import { PROMETHEUS_CONTENT_TYPE } from "./prometheus";
import { DEFAULT_MAX_BODY_BYTES, readJsonObject } from "./requestBody";
import type { ServerContext } from "./serverContext";
import { handleDetokenize, handleTokenize } from "./tokenizeRoutes";

/** Options of {@link createServer}. */
export interface CreateServerOptions {
  engine: EngineClient;
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** The model name clients send (default: engine.modelName). */
  servedModelName?: string;
  /** Jinja chat template text replacing the model's own. */
  chatTemplate?: string;
  /** Largest request body accepted (default 8 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Generation requests held at once before 503 (default: unlimited; the engine's queue decides). */
  maxQueue?: number;
}

/** A created server: `listen` binds it, `stop` closes it (the engine stays up: its owner shuts it down). */
export interface FastGenServer {
  app: AnyElysia;
  context: ServerContext;
  listen(host: string, port: number): Promise<{ url: string; port: number }>;
  stop(): Promise<void>;
}

type Handler = (body: Record<string, unknown>, request: Request, startedAt: number) => Response | Promise<Response>;

function keyMatches(header: string | null, key: Buffer): boolean {
  const m = header?.match(/^Bearer\s+(.+)$/i);
  if (!m) return false;
  const given = Buffer.from(m[1]!.trim());
  return given.length === key.length && timingSafeEqual(given, key);
}

/** Builds the app; nothing listens until `listen`. */
export function createServer(options: CreateServerOptions): FastGenServer {
  const { engine } = options;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const ctx: ServerContext = {
    engine,
    tokenizer: engine.tokenizer,
    modelName: options.servedModelName ?? engine.modelName,
    chatTemplate: options.chatTemplate,
    maxBodyBytes,
    maxQueue: options.maxQueue ?? Infinity,
    metrics: new ServerMetrics(),
    health: new EngineHealth(engine),
    createdAt: Math.floor(Date.now() / 1000),
  };
  const apiKey = options.apiKey ? Buffer.from(options.apiKey) : null;

  /** Answers, turning thrown errors into OpenAI errors, and counts the status. */
  const respond = async (endpoint: string, fn: () => Response | Promise<Response>): Promise<Response> => {
    let res: Response;
    try {
      res = await fn();
    } catch (e) {
      if (!(e instanceof ApiError)) console.error(`fastgen: ${endpoint} failed:`, e);
      res = errorResponse(e instanceof ApiError ? e : internalError());
    }
    ctx.metrics.countRequest(endpoint, res.status);
    return res;
  };
  const modelCard = () => ({
    id: ctx.modelName,
    object: "model",
    created: ctx.createdAt,
    owned_by: "fastgen",
    root: engine.modelName,
    parent: null,
    max_model_len: engine.maxModelLen,
  });

  const app = new Elysia({ serve: { maxRequestBodySize: Math.max(maxBodyBytes + 1, 128 * 1024 * 1024) } })
    .onRequest(({ request }) => {
      if (!apiKey || new URL(request.url).pathname === "/health") return;
      if (keyMatches(request.headers.get("authorization"), apiKey)) return;
      ctx.metrics.countRequest("unauthorized", 401);
      return errorResponse(unauthorized());
    })
    .onError(({ code, error, request }) => {
      if (code === "NOT_FOUND") {
        ctx.metrics.countRequest("unknown", 404);
        return errorResponse(routeNotFound(request.method, new URL(request.url).pathname));
      }
      console.error("fastgen: unhandled server error:", error);
      return errorResponse(internalError());
    })
    .get("/health", () =>
      respond("/health", () => {
        const problem = ctx.health.problem();
        if (problem !== null) throw engineUnavailable(problem);
        return new Response(null, { status: 200 });
      }),
    )
    .get("/version", () => respond("/version", () => jsonResponse({ version: pkg.version })))
    .get("/metrics", () =>
      respond("/metrics", () => {
        // A dead engine leaves its gauges out; the server's own metrics still answer.
        const body = ctx.metrics.render(ctx.modelName, ctx.health.metrics());
        return new Response(body, { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
      }),
    )
    .get("/v1/models", () => respond("/v1/models", () => jsonResponse({ object: "list", data: [modelCard()] })))
    // A wildcard: served names may hold "/" (org/model), which clients send as %2F.
    .get("/v1/models/*", ({ request }) =>
      respond("/v1/models/:model", () => {
        const raw = new URL(request.url).pathname.slice("/v1/models/".length);
        let name = raw;
        try {
          name = decodeURIComponent(raw);
        } catch {} // not valid percent-encoding: compare it as sent
        if (name !== ctx.modelName) throw modelNotFound(name);
        return jsonResponse(modelCard());
      }),
    );

  /** POST routes read their own body (under the size limit) and answer OpenAI-shaped errors. */
  const post = (path: string, handler: Handler) =>
    app.post(
      path,
      ({ request, server }) => {
        const startedAt = performance.now();
        // Generation can be silent for longer than Bun's idle timeout (queueing, long prompts).
        server?.timeout(request, 0);
        return respond(path, async () => handler(await readJsonObject(request, maxBodyBytes), request, startedAt));
      },
      { parse: "none" },
    );
  post("/v1/completions", (body, request, t0) => handleCompletions(ctx, body, request.signal, t0));
  post("/v1/chat/completions", (body, request, t0) => handleChatCompletions(ctx, body, request.signal, t0));
  post("/tokenize", (body) => handleTokenize(ctx, body));
  post("/detokenize", (body) => handleDetokenize(ctx, body));

  return {
    app,
    context: ctx,
    async listen(host: string, port: number) {
      app.listen({ hostname: host, port });
      const bound = app.server!;
      const shown = host.includes(":") ? `[${host}]` : host;
      return { url: `http://${shown}:${bound.port}`, port: bound.port! };
    },
    async stop() {
      await app.stop(true);
    },
  };
}
