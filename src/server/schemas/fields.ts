/**
 * Building blocks of the request schemas (TypeBox, through Elysia's `t`). A field set to null
 * counts as not given: the body reader drops top-level nulls before validation (validatedBody.ts),
 * so the schemas describe only real values. Integers are safe integers (JSON's 2^53 limit).
 */
import type { TSchema } from "@sinclair/typebox";
import { Type as t } from "@sinclair/typebox";

/** An integer in [min, max] (max defaults to the largest safe integer). */
export const int = (min: number, max = Number.MAX_SAFE_INTEGER, description?: string) =>
  t.Integer({ minimum: min, maximum: max, ...(description ? { description } : {}) });

/** A number in [min, max]; `exclusiveMin` makes the low bound exclusive. */
export const num = (min: number, max: number, description?: string, exclusiveMin = false) =>
  t.Number({ ...(exclusiveMin ? { exclusiveMinimum: min } : { minimum: min }), maximum: max, ...(description ? { description } : {}) });

/** An optional field. */
export const opt = <T extends TSchema>(schema: T) => t.Optional(schema);

/** A request body object: unknown fields are allowed (they are logged and ignored, as in vLLM). */
export const body = <P extends Parameters<typeof t.Object>[0]>(properties: P, description: string) =>
  t.Object(properties, { additionalProperties: true, description });

/** A plain JSON object of any keys. */
export const anyObject = (description: string) => t.Record(t.String(), t.Unknown(), { description });
