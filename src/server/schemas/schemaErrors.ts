/**
 * A schema validation failure as OpenAI's 400: `param` names the field the way the client wrote
 * it (`messages[1].content`, `logit_bias.5`), the message says what was expected and what came:
 *   'temperature' must be a number >= 0 and <= 2, got 3.
 * A union (a field of several forms) reports the form that got furthest into the value, so
 * `prompt: [[1], ["a"]]` names `prompt[1][0]`; when every form fails at the field itself, the
 * union's description says what is expected.
 */
import type { TSchema } from "@sinclair/typebox";
import type { ValueError } from "@sinclair/typebox/errors";
import { ValueErrorType } from "@sinclair/typebox/errors";
import { Kind } from "@sinclair/typebox";
import type { ApiError } from "../errors";
import { invalidParam } from "../errors";
import { describe } from "../requestParams";

/** A JSON pointer into `root` as a client names it: arrays as [i], object keys as .key. */
export function paramOf(pointer: string, root: unknown): string | null {
  if (pointer === "") return null;
  let out = "";
  let at: unknown = root;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += Array.isArray(at) ? `[${key}]` : out === "" ? key : `.${key}`;
    at = at !== null && typeof at === "object" ? (at as Record<string, unknown>)[key] : undefined;
  }
  return out;
}

function rangeText(s: TSchema, integer: boolean): string {
  const lo = s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : s.minimum !== undefined ? `>= ${s.minimum}` : "";
  const hi = s.maximum !== undefined && s.maximum !== Number.MAX_SAFE_INTEGER ? `<= ${s.maximum}` : "";
  return [integer ? "an integer" : "a number", [lo, hi].filter(Boolean).join(" and ")].filter(Boolean).join(" ");
}

/** What `s` accepts, as words ("a boolean", "a list of at most 4 strings"). */
export function expected(s: TSchema): string {
  switch (s[Kind]) {
    case "Integer": return rangeText(s, true);
    case "Number": return rangeText(s, false);
    case "Boolean": return "a boolean";
    case "Null": return "null";
    case "Literal": return JSON.stringify(s.const);
    case "String": {
      const bounds = [s.minLength ? `at least ${s.minLength}` : "", s.maxLength !== undefined ? `at most ${s.maxLength}` : ""].filter(Boolean);
      return bounds.length ? `a string of ${bounds.join(" and ")} characters` : "a string";
    }
    case "Array": {
      const size = [s.minItems ? `at least ${s.minItems}` : "", s.maxItems !== undefined ? `at most ${s.maxItems}` : ""].filter(Boolean);
      const items = expected(s.items as TSchema).replace(/^an? /, "");
      return size.length ? `a list of ${size.join(" and ")} items (each ${items})` : `a list (each ${items})`;
    }
    case "Object":
    case "Record": return "an object";
    case "Union": return s.description ?? (s.anyOf as TSchema[]).map(expected).join(" or ");
    default: return s.description ?? "a valid value";
  }
}

/** The error to report: inside a union, the first error of the form that got deepest. */
function deepest(e: ValueError): ValueError {
  if (e.type !== ValueErrorType.Union) return e;
  let best = e;
  for (const it of e.errors) {
    const first = it.First();
    if (first && first.path.length > best.path.length) best = first;
  }
  return best === e ? e : deepest(best);
}

/** The ApiError (400, invalid_request_error) for the first of `errors` against `body`. */
export function schemaError(errors: readonly ValueError[], body: unknown): ApiError {
  // A missing required field is reported as such (TypeBox also lists the type error it causes).
  const first = errors.find((e) => e.type === ValueErrorType.ObjectRequiredProperty) ?? errors[0];
  if (!first) return invalidParam(null, "The request body does not match the endpoint's schema.");
  const e = deepest(first);
  const param = paramOf(e.path, body);
  const name = param ?? "body";
  if (e.type === ValueErrorType.ObjectRequiredProperty) return invalidParam(param, `'${name}' is required.`);
  return invalidParam(param, `'${name}' must be ${expected(e.schema)}, got ${describe(e.value)}.`);
}
