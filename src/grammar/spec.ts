/**
 * StructuredOutput: what a request's output must match, in the one serializable shape every front
 * end (OpenAI response_format, vLLM structured_outputs / guided_*, tool calling, gRPC) maps onto.
 * It crosses the worker and gRPC boundaries as plain JSON; the engine compiles it (grammarCache.ts).
 */

/** A constraint on the generated text. Schemas and structural tags travel as JSON text. */
export type StructuredOutput =
  /** JSON matching `schema` (JSON text); without a schema any JSON object (OpenAI's json_object). */
  | { type: "json"; schema?: string }
  | { type: "regex"; pattern: string }
  /** Exactly one of the strings. */
  | { type: "choice"; choices: string[] }
  /** An EBNF grammar in XGrammar's dialect (GBNF-like; root rule `root`). */
  | { type: "grammar"; grammar: string }
  /** An XGrammar structural tag (JSON text): tool calls among free text. */
  | { type: "structural_tag"; tag: string };

/** Longest schema, pattern or grammar text a request may send, in characters. */
export const MAX_GRAMMAR_CHARS = 256 * 1024;

/** The cache key of a constraint: equal keys compile to the same grammar. */
export function grammarKey(s: StructuredOutput): string {
  switch (s.type) {
    case "json":
      return `json:${s.schema ?? ""}`;
    case "regex":
      return `regex:${s.pattern}`;
    case "choice":
      return `choice:${JSON.stringify(s.choices)}`;
    case "grammar":
      return `grammar:${s.grammar}`;
    case "structural_tag":
      return `tag:${s.tag}`;
  }
}

/** A string as an EBNF literal ("..." with \\, \" and control characters escaped). */
export function ebnfLiteral(text: string): string {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** The EBNF of a choice: one alternative per string. */
export function choiceGrammar(choices: readonly string[]): string {
  return `root ::= ${choices.map(ebnfLiteral).join(" | ")}`;
}

/** Checks a constraint's shape (it may come from an untrusted peer); returns an error text or null. */
export function checkStructuredOutput(s: unknown): string | null {
  if (typeof s !== "object" || s === null) return "structured output must be an object";
  const o = s as Record<string, unknown>;
  const text = (v: unknown) => typeof v === "string" && v.length > 0 && v.length <= MAX_GRAMMAR_CHARS;
  switch (o.type) {
    case "json":
      return o.schema === undefined || text(o.schema) ? null : "json schema must be non-empty JSON text";
    case "regex":
      return text(o.pattern) ? null : "regex must be a non-empty string";
    case "choice":
      return Array.isArray(o.choices) && o.choices.length > 0 && o.choices.every((c) => typeof c === "string" && c.length > 0)
        ? null
        : "choice must be a non-empty list of non-empty strings";
    case "grammar":
      return text(o.grammar) ? null : "grammar must be a non-empty string";
    case "structural_tag":
      return text(o.tag) ? null : "structural tag must be JSON text";
    default:
      return `unknown structured output type ${JSON.stringify(o.type)}`;
  }
}
