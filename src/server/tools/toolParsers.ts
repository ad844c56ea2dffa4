/**
 * Tool calls parsed out of a model's free output (tool_choice "auto"), by the format its chat
 * template teaches (vLLM's --tool-call-parser names):
 *   hermes       Hermes / Qwen2.5:  <tool_call>{"name": ..., "arguments": {...}}</tool_call> (repeatable)
 *   llama3_json  Llama 3.x:         [<|python_tag|>]{"name": ..., "parameters": {...}} (several joined by ;)
 *   mistral      Mistral:           [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
 *                                   or, v11+ tokenizers, [TOOL_CALLS]name{...}[TOOL_CALLS]name{...}
 * Text that does not hold a well-formed call stays content.
 */

export const TOOL_CALL_PARSERS = ["hermes", "llama3_json", "mistral"] as const;
export type ToolCallParserName = (typeof TOOL_CALL_PARSERS)[number];

export interface ParsedCall {
  name: string;
  /** The arguments as JSON text. */
  arguments: string;
}

export interface ParsedOutput {
  /** Text outside the calls (null when there is none). */
  content: string | null;
  calls: ParsedCall[];
}

/** The text that opens a call in each format: streams hold text back from it on. */
export function callMarker(parser: ToolCallParserName): string {
  return parser === "hermes" ? "<tool_call>" : parser === "mistral" ? "[TOOL_CALLS]" : "{";
}

function asCall(v: unknown, argsKey: "arguments" | "parameters"): ParsedCall | null {
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  const args = o[argsKey] ?? o.arguments ?? o.parameters ?? {};
  if (typeof o.name !== "string" || typeof args !== "object" || args === null) return null;
  return { name: o.name, arguments: JSON.stringify(args) };
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function content(text: string): string | null {
  const t = text.trim();
  return t === "" ? null : t;
}

function parseHermes(text: string): ParsedOutput {
  const calls: ParsedCall[] = [];
  const rest = text.replace(/<tool_call>([\s\S]*?)(<\/tool_call>|$)/g, (all, body: string) => {
    const call = asCall(tryJson(body.trim()), "arguments");
    if (!call) return all;
    calls.push(call);
    return "";
  });
  return calls.length === 0 ? { content: text, calls } : { content: content(rest), calls };
}

function parseLlama3(text: string): ParsedOutput {
  const body = text.trim().replace(/^<\|python_tag\|>/, "").trim();
  if (!body.startsWith("{")) return { content: text, calls: [] };
  const calls: ParsedCall[] = [];
  for (const part of body.split(/;\s*(?=\{)/)) {
    const call = asCall(tryJson(part.trim()), "parameters");
    if (!call) return { content: text, calls: [] };
    calls.push(call);
  }
  return { content: null, calls };
}

function parseMistral(text: string): ParsedOutput {
  const at = text.indexOf("[TOOL_CALLS]");
  if (at < 0) return { content: text, calls: [] };
  const before = text.slice(0, at);
  const body = text.slice(at + "[TOOL_CALLS]".length).trim();
  const list = tryJson(body);
  if (Array.isArray(list)) {
    const calls = list.map((v) => asCall(v, "arguments"));
    if (calls.every((c) => c !== null)) return { content: content(before), calls: calls as ParsedCall[] };
  }
  const calls: ParsedCall[] = [];
  for (const part of body.split("[TOOL_CALLS]")) {
    const m = /^\s*([A-Za-z0-9_.-]+)\s*(\{[\s\S]*\})\s*$/.exec(part);
    const args = m ? tryJson(m[2]!) : undefined;
    if (!m || typeof args !== "object" || args === null) return { content: text, calls: [] };
    calls.push({ name: m[1]!, arguments: JSON.stringify(args) });
  }
  return { content: content(before), calls };
}

/** The calls in `text` by `parser`'s format; `known` drops calls to functions not offered. */
export function parseToolCalls(parser: ToolCallParserName, text: string, known?: ReadonlySet<string>): ParsedOutput {
  const out = parser === "hermes" ? parseHermes(text) : parser === "mistral" ? parseMistral(text) : parseLlama3(text);
  if (!known || out.calls.every((c) => known.has(c.name))) return out;
  return { content: text, calls: [] };
}
