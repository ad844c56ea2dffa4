/**
 * The read-only routes of the HTTP server: GET /health (200 while the engine serves and the
 * server is not draining, else 503), /version, /metrics (Prometheus), /v1/models and
 * /v1/models/:model. Each answers through `respond` (errors to OpenAI's shape, status counted).
 */
import type { AnyElysia } from "elysia";
import pkg from "../../package.json";
import { jsonResponse, modelNotFound, shuttingDown } from "./errors";
import { engineUnavailable } from "./health";
import { PROMETHEUS_CONTENT_TYPE } from "./prometheus";
import { rawPath } from "./requestGate";
import type { ServerContext } from "./serverContext";

/** Answers `fn` for `endpoint`: thrown errors become OpenAI errors; the status is counted. */
export type Respond = (endpoint: string, request: Request, fn: () => Response | Promise<Response>) => Promise<Response>;

/** Adds the GET routes to `app`. */
export function addInfoRoutes(app: AnyElysia, ctx: ServerContext, respond: Respond): void {
  const modelCard = () => ({
    id: ctx.modelName,
    object: "model",
    created: ctx.createdAt,
    owned_by: "fastgen",
    root: ctx.engine.modelName,
    parent: null,
    max_model_len: ctx.engine.maxModelLen,
  });
  app
    .get("/health", ({ request }) =>
      respond("/health", request, () => {
        if (ctx.draining) throw shuttingDown();
        const problem = ctx.health.problem();
        if (problem !== null) throw engineUnavailable(problem);
        return new Response(null, { status: 200 });
      }),
    )
    .get("/version", ({ request }) => respond("/version", request, () => jsonResponse({ version: pkg.version })))
    .get("/metrics", ({ request }) =>
      respond("/metrics", request, () => {
        // A dead engine leaves its gauges out; the server's own metrics still answer.
        const body = ctx.metrics.render(ctx.modelName, ctx.health.metrics());
        return new Response(body, { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
      }),
    )
    .get("/v1/models", ({ request }) => respond("/v1/models", request, () => jsonResponse({ object: "list", data: [modelCard()] })))
    // A wildcard: served names may hold "/" (org/model), which clients send as %2F.
    .get("/v1/models/*", ({ request }) =>
      respond("/v1/models/:model", request, () => {
        const raw = rawPath(request.url).slice("/v1/models/".length);
        let name = raw;
        try {
          name = decodeURIComponent(raw);
        } catch {} // not valid percent-encoding: compare it as sent
        if (name !== ctx.modelName) throw modelNotFound(name);
        return jsonResponse(modelCard());
      }),
    );
}
