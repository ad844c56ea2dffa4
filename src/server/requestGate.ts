/**
 * What a request passes before any route: the path the router will match (made to agree with
 * the one checked here) and the API key (Authorization: Bearer, compared in constant time).
 */
import { timingSafeEqual } from "node:crypto";

/** Whether an Authorization header carries `key` as a Bearer token. */
export function keyMatches(header: string | null, key: Buffer): boolean {
  const m = header?.match(/^Bearer\s+(.+)$/i);
  if (!m) return false;
  const given = Buffer.from(m[1]!.trim());
  return given.length === key.length && timingSafeEqual(given, key);
}

/** The path as sent (what the router matches): from the first "/" after the host to "?". */
export function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

/**
 * `request`, or a copy the router reads the same path from. Elysia finds the path by searching
 * for "/" from index 11 (it assumes a host of 4+ characters): with "Host: x", GET /health?/v1/models
 * would pass the key check as /health and be routed as /v1/models. Such requests get a long host.
 */
export function routable(request: Request): Request {
  const url = request.url;
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start >= 0 && url.indexOf("/", 11) === start) return request;
  return new Request(`http://localhost${start >= 0 ? url.slice(start) : "/"}`, request);
}
