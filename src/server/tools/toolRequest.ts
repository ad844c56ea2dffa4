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
import type { RequestParams } from "../requestParams";
import { describe } from "../requestParams";

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

/** Most tools one request may define. */
export const MAX_TOOLS = 128;

function readTool(t: unknown, i: number): FunctionTool {
  const at = `tools[${i}]`;
  if (typeof t !== "object" || t === null) throw invalidParam(at, `'${at}' must be an object.`);
  const o = t as Record<string, unknown>;
  if (o.type !== "function") throw invalidParam(`${at}.type`, `'${at}.type' must be "function", got ${describe(o.type)}.`);
  const f = o.function as Record<string, unknown> | undefined;
  if (typeof f !== "object" || f === null) throw invalidParam(`${at}.function`, `'${at}.function' must be an object.`);
  if (typeof f.name !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(f.name))
    throw invalidParam(`${at}.function.name`, `'${at}.function.name' must be 1-64 letters, digits, _ . or -.`);
  const params = f.parameters;
  if (params !== undefined && params !== null && (typeof params !== "object" || Array.isArray(params)))
    throw invalidParam(`${at}.function.parameters`, `'${at}.function.parameters' must be a JSON schema object.`);
  const tool: FunctionTool = { name: f.name };
  if (typeof f.description === "string") tool.description = f.description;
  if (params) tool.parameters = params as Record<string, unknown>;
  if (typeof f.strict === "boolean") tool.strict = f.strict;
  return tool;
}

function readChoice(raw: unknown, tools: FunctionTool[]): ToolChoice {
  if (raw === undefined) return tools.length > 0 ? "auto" : "none";
  if (raw === "auto" || raw === "none" || raw === "required") {
    if (raw !== "none" && tools.length === 0) throw invalidParam("tool_choice", `'tool_choice' "${raw}" needs 'tools'.`);
    return raw;
  }
  const o = raw as Record<string, unknown>;
  const name = (o?.function as Record<string, unknown> | undefined)?.name ?? o?.name;
  if (typeof o !== "object" || o === null || o.type !== "function" || typeof name !== "string")
    throw invalidParam("tool_choice", `'tool_choice' must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}, got ${describe(raw)}.`);
  if (!tools.some((t) => t.name === name)) throw invalidParam("tool_choice", `'tool_choice' names '${name}', which is not in 'tools'.`);
  return { name };
}

/** Reads tools, tool_choice and parallel_tool_calls; null when no tools are given. */
export function readToolPlan(p: RequestParams): ToolPlan | null {
  const raw = p.raw("tools");
  if (raw !== undefined && !Array.isArray(raw)) throw invalidParam("tools", "'tools' must be a list.");
  const list = (raw as unknown[] | undefined) ?? [];
  if (list.length > MAX_TOOLS) throw invalidParam("tools", `'tools' may hold at most ${MAX_TOOLS} tools.`);
  const tools = list.map(readTool);
  const choice = readChoice(p.raw("tool_choice"), tools);
  const parallel = p.boolean("parallel_tool_calls") ?? true;
  p.raw("functions"); // the pre-tools API: ignored
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
