/**
 * CORS for browser apps (`--allowed-origins`, off by default). A preflight (OPTIONS with
 * Access-Control-Request-Method) is answered before the API key check, since browsers send it
 * without credentials: 204 with the allowed methods and the asked headers for an allowed origin,
 * a 403 OpenAI-shaped error for another. Every other answer to an allowed origin carries
 * Access-Control-Allow-Origin (and exposes X-Request-Id).
 */
import { ApiError, errorResponse } from "./errors";

/** Seconds a browser may cache a preflight answer. */
export const PREFLIGHT_MAX_AGE_S = 600;
const METHODS = "GET, POST, OPTIONS";

/** The origins allowed to call the server from a browser ("*" for any). */
export class CorsPolicy {
  private readonly any: boolean;
  private readonly origins: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    this.any = origins.includes("*");
    this.origins = new Set(origins.map((o) => o.replace(/\/+$/, "")));
  }

  /** The Access-Control-Allow-Origin value for `origin`, or null when it is not allowed. */
  allowOrigin(origin: string | null): string | null {
    if (origin === null) return null;
    if (this.any) return "*";
    return this.origins.has(origin) ? origin : null;
  }

  /** The answer to a preflight request, or null when `request` is not one. */
  preflight(request: Request): Response | null {
    if (request.method !== "OPTIONS" || !request.headers.has("access-control-request-method")) return null;
    const origin = request.headers.get("origin");
    const allowed = this.allowOrigin(origin);
    if (allowed === null)
      return errorResponse(new ApiError(403, `Origin ${JSON.stringify(origin)} is not allowed (--allowed-origins).`, "invalid_request_error", null, "cors_origin_not_allowed"));
    return new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-origin": allowed,
        "access-control-allow-methods": METHODS,
        "access-control-allow-headers": request.headers.get("access-control-request-headers") ?? "authorization, content-type",
        "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
        vary: "Origin",
      },
    });
  }

  /** Adds the CORS headers of an allowed origin to an answer. */
  decorate(request: Request, res: Response): void {
    const allowed = this.allowOrigin(request.headers.get("origin"));
    if (allowed === null) return;
    res.headers.set("access-control-allow-origin", allowed);
    res.headers.set("access-control-expose-headers", "x-request-id");
    res.headers.append("vary", "Origin");
  }
}
