/**
 * Checks of request fields beyond their schemas (schemas/): what depends on the served model, and
 * how a client's value is quoted in an error message.
 */
import { invalidParam } from "./errors";

/** A client value for an error message: its JSON, cut at 40 characters (never throws). */
export function describe(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = Array.isArray(v) ? "[...]" : "{...}"; // too deep or too big to write out
  }
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

/** Token ids below the vocabulary (a schema knows ids are integers >= 0, not the model's size). */
export function checkTokenIds(param: string, ids: readonly number[], vocabSize: number): void {
  const at = ids.findIndex((id) => id >= vocabSize);
  if (at >= 0) throw invalidParam(`${param}[${at}]`, `'${param}[${at}]' must be a token id below ${vocabSize}, got ${ids[at]}.`);
}
