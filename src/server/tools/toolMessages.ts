/**
 * Tool turns of a chat rendered through the model's template. A template that knows tools
 * (mentions `tool_calls` / `tools`, as Qwen2.5's, Llama 3.1's, Hermes' and Mistral's do) gets
 * them as transformers passes them: `tools` as a variable, assistant `tool_calls` with arguments
 * as objects, `tool` messages as they are. For a template that does not, the tools go into a
 * system message and calls into the assistant's text in the Hermes format, so the model still
 * sees them (and tool_choice "auto" parses the same format back).
 */
import type { ChatMessage, ChatTemplateSource } from "../../tokenizer/chatTemplate";
import { ChatTemplateError, selectTemplate } from "../../tokenizer/chatTemplate";
import type { FunctionTool } from "./toolRequest";

/** The OpenAI tool definitions as templates expect them. */
export function templateTools(tools: readonly FunctionTool[]): unknown[] {
  return tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description ?? "", parameters: t.parameters ?? { type: "object", properties: {} } } }));
}

/** The source of the template a chat with `tools` renders with (to see what it knows of tools); "" when there is none (rendering then fails with its 400). */
export function toolTemplateText(src: ChatTemplateSource, template: string | undefined, tools: unknown[]): string {
  try {
    return selectTemplate(src, { template, tools });
  } catch (e) {
    if (e instanceof ChatTemplateError) return "";
    throw e;
  }
}

interface ToolCallMessage {
  id?: string;
  type: "function";
  function: { name: string; arguments: string };
}

function argumentsObject(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function hermesCall(c: ToolCallMessage): string {
  return `<tool_call>\n${JSON.stringify({ name: c.function.name, arguments: argumentsObject(c.function.arguments) })}\n</tool_call>`;
}

/** A system prompt listing the tools, in the Hermes format (for templates without tool support). */
export function toolSystemPrompt(tools: readonly FunctionTool[]): string {
  const defs = templateTools(tools).map((t) => JSON.stringify(t)).join("\n");
  return (
    "You may call one or more functions to assist with the user query.\n" +
    `You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n${defs}\n</tools>\n` +
    "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
    '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
  );
}

/**
 * The messages to render for `template` (its source text), with `tools` offered (empty = none).
 * Returns the messages and whether `tools` goes to the template as a variable.
 */
export function toolMessages(messages: ChatMessage[], tools: readonly FunctionTool[], template: string): { messages: ChatMessage[]; passTools: boolean } {
  const knowsCalls = template.includes("tool_calls");
  const knowsTools = /\btools\b/.test(template);
  const out = messages.map((m): ChatMessage => {
    const calls = m.tool_calls as ToolCallMessage[] | undefined;
    if (!calls?.length) return m;
    if (knowsCalls) return { ...m, tool_calls: calls.map((c) => ({ ...c, function: { name: c.function.name, arguments: argumentsObject(c.function.arguments) } })) };
    const text = typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => p.text ?? "").join("\n");
    const { tool_calls: _, ...rest } = m;
    return { ...rest, content: [text, ...calls.map(hermesCall)].filter((s) => s !== "").join("\n") };
  });
  if (!knowsCalls) for (const m of out) if (m.role === "tool" && !/\btool\b/.test(template)) m.role = "user";
  if (tools.length === 0 || knowsTools) return { messages: out, passTools: tools.length > 0 };
  const prompt = toolSystemPrompt(tools);
  const first = out[0];
  if (first?.role === "system" && typeof first.content === "string") out[0] = { ...first, content: `${first.content}\n\n${prompt}` };
  else out.unshift({ role: "system", content: prompt });
  return { messages: out, passTools: false };
}
