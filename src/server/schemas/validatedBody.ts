/**
 * Route options that make Elysia read and validate a POST body against its schema:
 *   parse  our reader (size limit 413, deadline 408, bad JSON or nesting 400: requestBody.ts),
 *          then top-level nulls dropped (null = not given) and unknown fields logged (ignoredFields.ts)
 *   body   the TypeBox schema Elysia validates (failures: schemaErrors.ts, via the app's onError)
 * A reader's ApiError reaches onError wrapped in Elysia's ParseError (its `cause`).
 */
import type { TObject } from "@sinclair/typebox";

/** Keys of `body` that `schema` does not name (own keys only: "constructor" is not a field). */
export function unknownFields(schema: TObject, body: Record<string, unknown>): string[] {
  return Object.keys(body).filter((k) => !Object.hasOwn(schema.properties, k));
}

/** Drops top-level null fields: a client that sends every field means "not given" by null. */
export function dropNulls(body: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(body)) if (body[k] === null) delete body[k];
  return body;
}

/**
 * Options for `app.post(path, handler, options)`: `read` gets the request's JSON object and
 * `onUnknown` hears the fields the schema does not name (they are ignored).
 */
export function validatedBody<S extends TObject>(
  schema: S,
  read: (request: Request) => Promise<Record<string, unknown>>,
  onUnknown: (names: string[]) => void,
) {
  const parse = async ({ request }: { request: Request }) => {
    const body = dropNulls(await read(request));
    const unknown = unknownFields(schema, body);
    if (unknown.length > 0) onUnknown(unknown);
    return body;
  };
  // "json" after ours never runs (ours always returns the body); it tells the OpenAPI plugin the media type.
  return { parse: [parse, "json" as const], body: schema };
}
