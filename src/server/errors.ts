/**
 * OpenAI-shaped errors: every failure a client sees is
 * `{ "error": { "message", "type", "param", "code" } }` with the right HTTP status, never a stack.
 */

/** The `error.type` values this server sends (OpenAI's names where OpenAI has one). */
export type ApiErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "server_error"
  | "overloaded_error";

/** An error a handler throws to answer the client with a status and an OpenAI error body. */
export class ApiError extends Error {
  override name = "ApiError";

  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The JSON body OpenAI clients parse. */
  toBody(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 for a bad parameter; `param` names it the way the client wrote it (e.g. `messages[1].content`). */
export function invalidParam(param: string | null, message: string, code: string | null = null): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, code);
}

/** 400 for a parameter this server does not implement. */
export function unsupportedParam(param: string, detail = ""): ApiError {
  const more = detail ? ` ${detail}` : "";
  return invalidParam(param, `Unsupported parameter: '${param}' is not supported by this server.${more}`, "unsupported_parameter");
}

/** 404 for a model name this server does not serve. */
export function modelNotFound(model: string): ApiError {
  return new ApiError(404, `The model '${model}' does not exist.`, "invalid_request_error", "model", "model_not_found");
}

/** 404 for a path (or method) no route serves. */
export function routeNotFound(method: string, path: string): ApiError {
  return new ApiError(404, `No route for ${method} ${path}.`, "not_found_error", null, "not_found");
}

/** 401 when --api-key is set and the request does not carry it. */
export function unauthorized(): ApiError {
  return new ApiError(
    401,
    "Invalid or missing API key: send it as 'Authorization: Bearer <key>'.",
    "authentication_error",
    null,
    "invalid_api_key",
    { "www-authenticate": "Bearer" },
  );
}

/** 503 with Retry-After when the engine's queue (or the server's) is full. */
export function overloaded(message: string, retryAfterSeconds = 1): ApiError {
  return new ApiError(503, message, "overloaded_error", null, "overloaded", { "retry-after": String(retryAfterSeconds) });
}

/** 503 for new work while the server drains for shutdown (SIGTERM); the connection is closed. */
export function shuttingDown(): ApiError {
  return new ApiError(503, "The server is shutting down; send the request to another instance.", "server_error", null, "shutting_down", {
    connection: "close",
  });
}

/**
 * 503 with Retry-After: the engine (or the replica) crashed while running the request, or is
 * restarting after a crash. The request may be innocent, so a retry is invited.
 */
export function engineCrashed(message: string, retryAfterSeconds = 1): ApiError {
  return new ApiError(503, message, "server_error", null, "engine_crashed", { "retry-after": String(retryAfterSeconds) });
}

/**
 * 422 for a request identical to one that was running when an engine crashed (the poison-request
 * quarantine). A 4xx other than 408/409/429, because OpenAI's SDKs retry those and every 5xx:
 * an automatic retry of a query of death would take the next engine down.
 */
export function requestQuarantined(message: string): ApiError {
  return new ApiError(422, message, "invalid_request_error", null, "request_quarantined");
}

/** 500 with a generic message: the cause is logged on the server, never sent. */
export function internalError(): ApiError {
  return new ApiError(500, "The server had an error while processing your request.", "server_error", null, "internal_error");
}

/** A JSON response with the given status and extra headers. */
export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The response for an ApiError. */
export function errorResponse(err: ApiError): Response {
  return jsonResponse(err.toBody(), err.status, err.headers);
}
