/**
 * Reads a request's JSON body under a size limit and a deadline: 413 past the limit (checked on
 * Content-Length and again while streaming, for chunked bodies), 408 for a body not whole by the
 * deadline (a client that stalls or trickles bytes cannot hold a connection open), 400 for a body
 * cut short on the wire, bad JSON, a body that is not an object, or one nested deeper than
 * MAX_JSON_DEPTH (nothing downstream then recurses on client data).
 */
import { ApiError, invalidParam } from "./errors";

/** Default request body limit: 8 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Default seconds a client has to send its whole request body (--body-timeout). */
export const DEFAULT_BODY_TIMEOUT_S = 30;
/** Deepest nesting of arrays and objects accepted (OpenAI requests need about 5). */
export const MAX_JSON_DEPTH = 32;

/** Whether `value` nests arrays/objects deeper than `max` (iterative: deep input cannot overflow it). */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as object))
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `Request body is larger than the limit of ${limit} bytes.`, "invalid_request_error", null, "request_too_large");
}

/** 408: the body was not whole in time; the connection is closed (the rest of it is never read). */
function tooSlow(timeoutMs: number): ApiError {
  return new ApiError(408, `The request body was not received within ${timeoutMs / 1000} s.`, "invalid_request_error", null, "request_timeout", {
    connection: "close",
  });
}

async function readLimited(request: Request, limit: number, timeoutMs: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (!request.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // One deadline for the whole body: a per-read timeout would let a client trickle a byte at a time.
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), timeoutMs)));
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>> | "late";
      try {
        chunk = await Promise.race([reader.read(), late]);
      } catch (e) {
        // Cut short or malformed on the wire (bad chunked encoding, a client that hung up).
        throw invalidParam(null, `The request body could not be read: ${(e as Error).message}`, "invalid_body");
      }
      if (chunk === "late") {
        void reader.cancel().catch(() => {});
        throw tooSlow(timeoutMs);
      }
      const { done, value } = chunk;
    if (done) break;
      total += value.byteLength;
      if (total > limit) {
        void reader.cancel().catch(() => {});
        throw tooLarge(limit);
      }
      chunks.push(value);
    }
  } finally {
    clearTimeout(timer);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** The body as a JSON object, or an ApiError (400 / 408 / 413). */
export async function readJsonObject(request: Request, limit: number, timeoutMs = DEFAULT_BODY_TIMEOUT_S * 1000): Promise<Record<string, unknown>> {
  const bytes = await readLimited(request, limit, timeoutMs);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw invalidParam(null, "Request body is not valid UTF-8.", "invalid_json");
  }
  if (text.trim() === "") throw invalidParam(null, "Request body is empty: send a JSON object.", "invalid_json");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw invalidParam(null, `Request body is not valid JSON: ${(e as Error).message}`, "invalid_json");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw invalidParam(null, "Request body must be a JSON object.", "invalid_json");
  if (nestedDeeperThan(value, MAX_JSON_DEPTH))
    throw invalidParam(null, `Request body nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels.`, "invalid_json");
  return value as Record<string, unknown>;
}
