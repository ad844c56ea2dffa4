/**
 * The request fields that constrain the output, mapped onto the engine's StructuredOutput:
 *   OpenAI  response_format: {type: "text" | "json_object" | "json_schema", json_schema: {name, schema, strict}}
 *   vLLM    structured_outputs: {json | regex | choice | grammar | json_object | structural_tag}
 *           and its older guided_json / guided_regex / guided_choice / guided_grammar
 * Their shapes are the schema's (schemas/structuredSchema.ts). At most one may be given. Compiling
 * happens in the engine (a bad schema is a 400 from there).
 */
import type { StructuredOutput } from "../grammar/spec";
import { MAX_GRAMMAR_CHARS, checkStructuredOutput } from "../grammar/spec";
import { invalidParam } from "./errors";
import { describe } from "./requestParams";
import type { StructuredFieldsBody } from "./schemas/structuredSchema";

function schemaText(param: string, v: unknown): string {
  if (typeof v === "string") {
    try {
      JSON.parse(v);
    } catch {
      throw invalidParam(param, `'${param}' must be a JSON schema (an object or its JSON text).`);
    }
    return v;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalidParam(param, `'${param}' must be a JSON schema object, got ${describe(v)}.`);
  return JSON.stringify(v);
}

function checked(param: string, s: StructuredOutput): StructuredOutput {
  const text = JSON.stringify(s);
  if (text.length > MAX_GRAMMAR_CHARS + 1024) throw invalidParam(param, `'${param}' is longer than ${MAX_GRAMMAR_CHARS} characters.`);
  const bad = checkStructuredOutput(s);
  if (bad) throw invalidParam(param, `'${param}': ${bad}.`);
  return s;
}

/** OpenAI's response_format (undefined for text). */
export function fromResponseFormat(format: Record<string, unknown>, param = "response_format"): StructuredOutput | undefined {
  switch (format.type) {
    case "text":
      return undefined;
    case "json_object":
      return { type: "json" };
    case "json_schema": {
      // Chat Completions nests {name, schema, strict}; the Responses API flattens it into the format.
      const nested = format.json_schema !== undefined && format.json_schema !== null;
      const js = (nested ? format.json_schema : format) as Record<string, unknown>;
      if (typeof js !== "object") throw invalidParam(`${param}.json_schema`, `'${param}.json_schema' must be an object.`);
      if (js.schema === undefined || js.schema === null) return { type: "json" };
      return checked(param, { type: "json", schema: schemaText(nested ? `${param}.json_schema.schema` : `${param}.schema`, js.schema) });
    }
    default:
      throw invalidParam(`${param}.type`, `'${param}.type' must be "text", "json_object" or "json_schema", got ${describe(format.type)}.`);
  }
}

/** vLLM's structured_outputs object (one key of json, regex, choice, grammar, json_object, structural_tag). */
function fromVllm(o: NonNullable<StructuredFieldsBody["structured_outputs"]>): StructuredOutput | undefined {
  const keys = ["json", "regex", "choice", "grammar", "json_object", "structural_tag"] as const;
  const given = keys.filter((k) => o[k] !== undefined && o[k] !== null && o[k] !== false);
  if (given.length > 1) throw invalidParam("structured_outputs", `'structured_outputs' takes one constraint, got ${given.join(", ")}.`);
  const at = (k: string) => `structured_outputs.${k}`;
  switch (given[0]) {
    case undefined:
      return undefined;
    case "json":
      return checked(at("json"), { type: "json", schema: schemaText(at("json"), o.json) });
    case "json_object":
      return { type: "json" };
    case "regex":
      return checked(at("regex"), { type: "regex", pattern: o.regex! });
    case "choice":
      return checked(at("choice"), { type: "choice", choices: o.choice! });
    case "grammar":
      return checked(at("grammar"), { type: "grammar", grammar: o.grammar! });
    default:
      return checked(at("structural_tag"), { type: "structural_tag", tag: typeof o.structural_tag === "string" ? o.structural_tag : JSON.stringify(o.structural_tag) });
  }
}

/** The request's output constraint, if any; a 400 when two are given or one is malformed. */
export function readStructuredOutput(b: StructuredFieldsBody): StructuredOutput | undefined {
  const found: [string, StructuredOutput][] = [];
  const fromFormat = b.response_format === undefined ? undefined : fromResponseFormat(b.response_format);
  if (fromFormat) found.push(["response_format", fromFormat]);
  const so = b.structured_outputs ?? b.guided_decoding;
  const fromSo = so === undefined ? undefined : fromVllm(so);
  if (fromSo) found.push(["structured_outputs", fromSo]);
  if (b.guided_json !== undefined) found.push(["guided_json", checked("guided_json", { type: "json", schema: schemaText("guided_json", b.guided_json) })]);
  if (b.guided_regex !== undefined) found.push(["guided_regex", checked("guided_regex", { type: "regex", pattern: b.guided_regex })]);
  if (b.guided_choice !== undefined) found.push(["guided_choice", checked("guided_choice", { type: "choice", choices: b.guided_choice })]);
  if (b.guided_grammar !== undefined) found.push(["guided_grammar", checked("guided_grammar", { type: "grammar", grammar: b.guided_grammar })]);
  // guided_decoding_backend (XGrammar is the one backend) and guided_whitespace_pattern (the JSON grammar is compact) are accepted.
  if (found.length > 1) throw invalidParam(found[1]![0], `Only one output constraint may be given, got ${found.map((f) => f[0]).join(" and ")}.`);
  return found[0]?.[1];
}
