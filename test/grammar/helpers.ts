/**
 * Helpers of the grammar tests: runs constrained requests to completion on an in-process
 * EngineCore (the demo model, CPU), computing masks as the engine host does, and checks JSON
 * against a schema with a small validator (the subset the tests' schemas use).
 */
import { EngineCore } from "../../src/engine/engineCore";
import type { EngineOptions } from "../../src/engine/options";
import type { SamplingOptions } from "../../src/engine/samplingOptions";
import { defaultModelDir } from "../../src/model/defaultModel";
import { z } from "zod";

/** The demo engine; one grammar Worker unless `opts` says otherwise (the default grows with the host's cores). */
export function loadDemo(opts: Partial<EngineOptions> = {}): Promise<EngineCore> {
  return EngineCore.load(defaultModelDir(), { backend: "cpu", kvBlocks: 256, blockSize: 16, grammarWorkers: 1, ...opts });
}

export interface Finished {
  text: string[];
  finish: string[];
  tokenIds: number[][];
}

/**
 * Runs the requests together, each pass as the engine host runs it (launch, masks while the
 * forward runs, finish); returns each one's samples.
 */
export async function runAll(core: EngineCore, reqs: { prompt: string; sampling: SamplingOptions }[]): Promise<Finished[]> {
  const out: Finished[] = reqs.map((r) => {
    const n = r.sampling.n ?? 1;
    return { text: Array(n).fill(""), finish: Array(n).fill(""), tokenIds: Array.from({ length: n }, () => []) };
  });
  for (let i = 0; i < reqs.length; i++) {
    const ids = core.tokenizer.encode(reqs[i]!.prompt, { addSpecialTokens: true });
    await core.addRequestAsync(String(i), ids, reqs[i]!.sampling);
  }
  while (core.hasWork()) {
    core.launchStep();
    await core.prepareMasks();
    for (const { id, deltas, error } of core.finishStep()) {
      if (error) throw error;
      const r = out[Number(id)]!;
      for (const d of deltas) {
        r.text[d.index] += d.text;
        r.tokenIds[d.index]!.push(...d.tokenIds);
        if (d.finishReason) r.finish[d.index] = d.finishReason;
      }
    }
  }
  return out;
}

type Schema = Record<string, any>;

/** Errors of `v` against `schema` (type, properties, required, items, enum, min/maxItems, additionalProperties false). */
export function schemaErrors(v: unknown, schema: Schema, at = "$"): string[] {
  const errs: string[] = [];
  if (schema.enum && !schema.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(v))) errs.push(`${at}: not in enum`);
  if (schema.const !== undefined && JSON.stringify(schema.const) !== JSON.stringify(v)) errs.push(`${at}: not the const`);
  const t = schema.type;
  const types: string[] = t === undefined ? [] : Array.isArray(t) ? t : [t];
  const typeOf = (x: unknown) => (x === null ? "null" : Array.isArray(x) ? "array" : Number.isInteger(x) ? "integer" : typeof x);
  if (types.length > 0 && !types.some((ty) => ty === typeOf(v) || (ty === "number" && typeof v === "number"))) {
    errs.push(`${at}: ${typeOf(v)} is not ${types.join("|")}`);
    return errs;
  }
  if (schema.anyOf && !schema.anyOf.some((s: Schema) => schemaErrors(v, s, at).length === 0)) errs.push(`${at}: matches no anyOf`);
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const k of schema.required ?? []) if (!(k in o)) errs.push(`${at}.${k}: missing`);
    for (const [k, sub] of Object.entries(schema.properties ?? {})) if (k in o) errs.push(...schemaErrors(o[k], sub as Schema, `${at}.${k}`));
    if (schema.additionalProperties === false)
      for (const k of Object.keys(o)) if (!(k in (schema.properties ?? {}))) errs.push(`${at}.${k}: not allowed`);
  }
  if (Array.isArray(v)) {
    if (schema.items) v.forEach((x, i) => errs.push(...schemaErrors(x, schema.items, `${at}[${i}]`)));
    if (schema.minItems !== undefined && v.length < schema.minItems) errs.push(`${at}: fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && v.length > schema.maxItems) errs.push(`${at}: more than ${schema.maxItems} items`);
  }
  if (typeof v === "number") {
    if (schema.minimum !== undefined && v < schema.minimum) errs.push(`${at}: below minimum`);
    if (schema.maximum !== undefined && v > schema.maximum) errs.push(`${at}: above maximum`);
  }
  return errs;
}

/** A nested schema: objects, arrays, enums, numbers, required fields; strings kept short. */
export const PERSON_SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer", minimum: 0, maximum: 120 },
    role: { type: "string", enum: ["admin", "user", "guest"] },
    score: { type: "number", minimum: -100, maximum: 100 },
    tags: { type: "array", items: { type: "string", enum: ["a", "b", "c"] }, maxItems: 3 },
    address: {
      type: "object",
      properties: { city: { type: "string", maxLength: 10 }, zip: { type: "integer", minimum: 0, maximum: 99999 } },
      required: ["city", "zip"],
      additionalProperties: false,
    },
  },
  required: ["name", "age", "role", "score", "tags", "address"],
  additionalProperties: false,
};

/** A nested zod schema the client tests share: bounded strings and numbers (a random model would
 * otherwise run to max_tokens inside an unbounded one), an enum, an array and an object. */
export const Person = z.object({
  name: z.string().max(12),
  age: z.number().int().min(0).max(120),
  role: z.enum(["admin", "user", "guest"]),
  tags: z.array(z.enum(["a", "b", "c"])).max(3),
  address: z.object({ city: z.string().max(10), zip: z.number().int().min(0).max(99999) }),
});
