/**
 * SamplingParams' output constraint on the wire: `structured_output` (a StructuredOutput oneof)
 * and `tools` / `tool_choice` / `parallel_tool_calls`, which become the grammar chat completions
 * derives for a required or named tool_choice (server/tools/toolRequest.ts). Both ends use
 * these: RemoteEngine sends the engine's StructuredOutput, a replica checks and reads it back.
 */
import type { StructuredOutput } from "../grammar/spec";
import { MAX_GRAMMAR_CHARS, checkStructuredOutput } from "../grammar/spec";
import type { FunctionTool, ToolPlan } from "../server/tools/toolRequest";
import { toolConstraint } from "../server/tools/toolRequest";
import { MAX_TOOLS } from "../server/schemas/structuredSchema";
import { invalidArgument } from "./status";
import type { WireFunctionTool, WireSamplingParams, WireStructuredOutput } from "./wire";

/** The wire form of a constraint. */
export function structuredToWire(s: StructuredOutput): WireStructuredOutput {
  switch (s.type) {
    case "json":
      return s.schema === undefined ? { json_object: true } : { json_schema: s.schema };
    case "regex":
      return { regex: s.pattern };
    case "choice":
      return { choice: { choices: s.choices } };
    case "grammar":
      return { grammar: s.grammar };
    case "structural_tag":
      return { structural_tag: s.tag };
  }
}

/** The constraint of a wire StructuredOutput; null when no kind is set (or json_object is false). */
function structuredFromWire(m: WireStructuredOutput): StructuredOutput | null {
  switch (m.kind) {
    case "json_schema":
      return { type: "json", schema: m.json_schema ?? "" };
    case "json_object":
      return m.json_object ? { type: "json" } : null;
    case "regex":
      return { type: "regex", pattern: m.regex ?? "" };
    case "choice":
      return { type: "choice", choices: m.choice?.choices ?? [] };
    case "grammar":
      return { type: "grammar", grammar: m.grammar ?? "" };
    case "structural_tag":
      return { type: "structural_tag", tag: m.structural_tag ?? "" };
    default:
      return null;
  }
}

function readStructured(m: WireStructuredOutput): StructuredOutput {
  const field = "params.structured_output";
  const s = structuredFromWire(m);
  if (!s) throw invalidArgument(field, "must set one of json_schema, json_object (true), regex, choice, grammar or structural_tag");
  const bad = checkStructuredOutput(s);
  if (bad) throw invalidArgument(`${field}.${m.kind}`, bad);
  if (s.type === "json" && s.schema !== undefined) {
    try {
      JSON.parse(s.schema);
    } catch {
      throw invalidArgument(`${field}.json_schema`, "must be a JSON schema's JSON text");
    }
  }
  return s;
}

function readTool(tool: WireFunctionTool, i: number): FunctionTool {
  const at = `params.tools[${i}]`;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tool.name)) throw invalidArgument(`${at}.name`, "must be 1-64 letters, digits, _ . or -");
  const out: FunctionTool = { name: tool.name };
  if (tool.description !== "") out.description = tool.description;
  if (tool.parameters === "") return out;
  if (tool.parameters.length > MAX_GRAMMAR_CHARS) throw invalidArgument(`${at}.parameters`, `must be at most ${MAX_GRAMMAR_CHARS} characters`);
  let schema: unknown;
  try {
    schema = JSON.parse(tool.parameters);
  } catch {
    schema = undefined;
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw invalidArgument(`${at}.parameters`, "must be a JSON schema object's JSON text");
  out.parameters = schema as Record<string, unknown>;
  return out;
}

/** The tool plan of the params; null when their tool_choice adds no constraint. */
function readToolChoice(p: WireSamplingParams): ToolPlan | null {
  const wire = p.tools ?? [];
  const choice = p.tool_choice ?? "";
  if (wire.length > MAX_TOOLS) throw invalidArgument("params.tools", `may hold at most ${MAX_TOOLS} tools, got ${wire.length}`);
  const tools = wire.map(readTool);
  if (choice === "" || choice === "auto" || choice === "none") return null;
  if (tools.length === 0) throw invalidArgument("params.tool_choice", `"${choice}" needs tools`);
  if (choice !== "required" && !tools.some((t) => t.name === choice))
    throw invalidArgument("params.tool_choice", `must be "", "auto", "none", "required" or a tool's name, got "${choice}"`);
  return { tools, choice: choice === "required" ? "required" : { name: choice }, parallel: p.parallel_tool_calls ?? true };
}

/** The output constraint the params ask for: structured_output's, or a required / named tool_choice's. */
export function readConstraint(p: WireSamplingParams): StructuredOutput | undefined {
  const structured = p.structured_output ? readStructured(p.structured_output) : undefined;
  const tools = readToolChoice(p);
  if (!tools) return structured;
  if (structured) throw invalidArgument("params.tool_choice", "a required or named tool_choice constrains the output already: it cannot be combined with structured_output");
  return toolConstraint(tools);
}
