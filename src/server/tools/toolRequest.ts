/**
 * tools, tool_choice and parallel_tool_calls of /v1/chat/completions, checked, and the output
 * constraint they imply: `required` and a named function are decoded under a grammar, so the
 * arguments are valid JSON for the function's schema whatever the model is; `auto` is parsed
 * from free output (toolParsers.ts); `none` renders the tools but calls none.
 *
 *   named function: the output is the arguments object itself (schema = its parameters)
 *   required:       [{"name": <one of the tools>, "arguments": {...}}, ...] (1 item, or up to 8 when parallel)
 */
import type { StructuredOutput } from "../../grammar/spec";
import { invalidParam } from "../errors";
import { describe } from "../requestParams";
import type { ToolBody, ToolFieldsBody } from "../schemas/structuredSchema";

export interface FunctionTool {
  name: string;
  description?: string;
  /** JSON schema of the arguments (an object schema; absent = any object). */
  parameters?: Record<string, unknown>;
  strict?: boolean;
}

export type ToolChoice = "auto" | "none" | "required" | { name: string };

export interface ToolPlan {
  tools: FunctionTool[];
  choice: ToolChoice;
  parallel: boolean;
}

/** One tool (its shape is the schema's): a function with a usable name. */
function readTool(t: ToolBody, i: number): FunctionTool {
  const at = `tools[${i}]`;
  if (t.type !== "function") throw invalidParam(`${at}.type`, `'${at}.type' must be "function", got ${describe(t.type)}.`);
  const f = t.function;
  if (f === undefined) throw invalidParam(`${at}.function`, `'${at}.function' must be an object.`);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(f.name))
    throw invalidParam(`${at}.function.name`, `'${at}.function.name' must be 1-64 letters, digits, _ . or -.`);
  const tool: FunctionTool = { name: f.name };
  if (typeof f.description === "string") tool.description = f.description;
  if (f.parameters) tool.parameters = f.parameters;
  if (typeof f.strict === "boolean") tool.strict = f.strict;
  return tool;
}

/** tool_choice checked against the tools: "auto" (the default with tools), "none", "required" or a named function (chat's or the Responses API's shape). */
export function readChoice(raw: ToolFieldsBody["tool_choice"], tools: FunctionTool[]): ToolChoice {
  if (raw === undefined) return tools.length > 0 ? "auto" : "none";
  if (raw === "auto" || raw === "none" || raw === "required") {
    if (raw !== "none" && tools.length === 0) throw invalidParam("tool_choice", `'tool_choice' "${raw}" needs 'tools'.`);
    return raw;
  }
  const o = typeof raw === "object" ? raw : undefined;
  const fn = o?.function;
  const name = (typeof fn === "object" && fn !== null ? (fn as Record<string, unknown>).name : undefined) ?? o?.name;
  if (o === undefined || o.type !== "function" || typeof name !== "string")
    throw invalidParam("tool_choice", `'tool_choice' must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}, got ${describe(raw)}.`);
  if (!tools.some((t) => t.name === name)) throw invalidParam("tool_choice", `'tool_choice' names '${name}', which is not in 'tools'.`);
  return { name };
}

/** Reads tools, tool_choice and parallel_tool_calls (`functions`, the pre-tools API, is ignored); null when no tools are given. */
export function readToolPlan(b: ToolFieldsBody): ToolPlan | null {
  const tools = (b.tools ?? []).map(readTool);
  const choice = readChoice(b.tool_choice, tools);
  const parallel = b.parallel_tool_calls ?? true;
  if (tools.length === 0) return null;
  return { tools, choice, parallel };
}

const ANY_OBJECT = { type: "object" };

/**
 * Most calls of one "required" answer: a bound keeps a weak model from listing calls until
 * max_tokens cuts the list (and the JSON) short.
 */
export const MAX_PARALLEL_TOOL_CALLS = 8;

/** The grammar a tool plan decodes under: none for auto and none. */
export function toolConstraint(plan: ToolPlan): StructuredOutput | undefined {
  const { choice, tools } = plan;
  if (choice === "auto" || choice === "none") return undefined;
  if (typeof choice === "object") {
    const tool = tools.find((t) => t.name === choice.name)!;
    return { type: "json", schema: JSON.stringify(tool.parameters ?? ANY_OBJECT) };
  }
  const call = {
    anyOf: tools.map((t) => ({
      type: "object",
      properties: { name: { const: t.name }, arguments: t.parameters ?? ANY_OBJECT },
      required: ["name", "arguments"],
      additionalProperties: false,
    })),
  };
  const array = { type: "array", items: call, minItems: 1, maxItems: plan.parallel ? MAX_PARALLEL_TOOL_CALLS : 1 };
  return { type: "json", schema: JSON.stringify(array) };
}
