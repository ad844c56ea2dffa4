/**
 * The output constraint of a Responses request: `text.format` (json_schema, json_object) and the
 * function `tools` with `tool_choice`, read onto the chat machinery (structuredOutputs.ts,
 * tools/toolRequest.ts). The Responses API writes a tool flat, `{type: "function", name,
 * description, parameters, strict}`, and a named choice as `{type: "function", name}`.
 * Built-in tools (web_search, file_search, ...) are a 400 naming them.
 */
import type { StructuredOutput } from "../../grammar/spec";
import { invalidParam, unsupportedParam } from "../errors";
import { describe } from "../requestParams";
import type { ResponsesBody, ResponsesToolBody } from "../schemas/responsesSchema";
import { fromResponseFormat } from "../structuredOutputs";
import type { FunctionTool, ToolPlan } from "../tools/toolRequest";
import { readChoice, toolConstraint } from "../tools/toolRequest";

export interface ResponsesConstraint {
  /** The function tools offered, when there are some. */
  tools: ToolPlan | null;
  /** What the output is decoded under: text.format's, or a required / named tool_choice's. */
  structured?: StructuredOutput;
}

function readTool(tool: ResponsesToolBody, i: number): FunctionTool {
  const at = `tools[${i}]`;
  if (tool.type !== "function")
    throw unsupportedParam(`${at}.type`, `Only function tools are supported, got ${describe(tool.type)}: FastGen runs no built-in tools.`);
  if (typeof tool.name !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(tool.name))
    throw invalidParam(`${at}.name`, `'${at}.name' must be 1-64 letters, digits, _ . or -.`);
  const out: FunctionTool = { name: tool.name };
  if (typeof tool.description === "string") out.description = tool.description;
  if (tool.parameters) out.parameters = tool.parameters;
  if (typeof tool.strict === "boolean") out.strict = tool.strict;
  return out;
}

/** text.format, tools, tool_choice and parallel_tool_calls; a 400 naming the field for what cannot run. */
export function readResponsesConstraint(b: ResponsesBody): ResponsesConstraint {
  const format = b.text?.format;
  const structured = format ? fromResponseFormat(format, "text.format") : undefined;
  const defined = (b.tools ?? []).map(readTool);
  // "auto" with no tools is what clients send for plain text: nothing to call.
  if (defined.length === 0 && (b.tool_choice === undefined || b.tool_choice === "auto")) return { tools: null, structured };
  const choice = readChoice(b.tool_choice, defined);
  if (defined.length === 0) return { tools: null, structured };
  const tools: ToolPlan = { tools: defined, choice, parallel: b.parallel_tool_calls ?? true };
  const forced = toolConstraint(tools);
  if (forced && structured)
    throw invalidParam("tool_choice", "A required or named tool_choice constrains the output already: it cannot be combined with a json text.format.");
  return { tools, structured: forced ?? structured };
}

/** The tools as the response object echoes them. */
export function echoTools(plan: ToolPlan | null): Record<string, unknown>[] {
  return (plan?.tools ?? []).map((t) => ({
    type: "function", name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? null,
  }));
}

/** The tool_choice as the response object echoes it. */
export function echoToolChoice(plan: ToolPlan | null): unknown {
  const choice = plan?.choice ?? "auto";
  return typeof choice === "object" ? { type: "function", name: choice.name } : choice;
}
