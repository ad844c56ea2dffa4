/**
 * A choice's text turned into OpenAI tool calls, by tool_choice:
 *   named     the text is the arguments (the grammar made it valid JSON for the schema)
 *   required  the text is a JSON list of {name, arguments} (idem)
 *   auto      parsed by the --tool-call-parser format; text without a call stays content
 * and ToolStream, which does the same for a stream: OpenAI's delta.tool_calls chunks, the first
 * one of a call carrying its id, type and name, the following ones pieces of its arguments.
 */
import type { ParsedCall, ToolCallParserName } from "./toolParsers";
import { callMarker, parseToolCalls } from "./toolParsers";
import type { ToolPlan } from "./toolRequest";

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface ToolMessage {
  content: string | null;
  tool_calls?: ToolCall[];
}

export const newCallId = () => `call_${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`;

const toCall = (c: ParsedCall): ToolCall => ({ id: newCallId(), type: "function", function: { name: c.name, arguments: c.arguments } });

/** The calls of a finished choice's text (none when it holds none). */
export function toolMessage(plan: ToolPlan, parser: ToolCallParserName, text: string): ToolMessage {
  const { choice } = plan;
  if (choice === "none") return { content: text };
  if (typeof choice === "object") return { content: null, tool_calls: [toCall({ name: choice.name, arguments: text })] };
  if (choice === "required") {
    try {
      const list = JSON.parse(text) as { name: string; arguments: unknown }[];
      return { content: null, tool_calls: list.map((c) => toCall({ name: c.name, arguments: JSON.stringify(c.arguments) })) };
    } catch {
      return { content: text }; // cut by max_tokens: the list never closed
    }
  }
  const parsed = parseToolCalls(parser, text, new Set(plan.tools.map((t) => t.name)));
  if (parsed.calls.length === 0) return { content: text };
  return { content: parsed.content, tool_calls: parsed.calls.map(toCall) };
}

/** The finish reason of a choice that made calls ("tool_calls" for one that stopped on its own). */
export function toolFinishReason(message: ToolMessage, reason: string | null): string | null {
  return message.tool_calls?.length && reason === "stop" ? "tool_calls" : reason;
}

/** What a stream sends for one delta of text: content, tool-call pieces, or nothing yet. */
export interface ToolDelta {
  content?: string;
  tool_calls?: { index: number; id?: string; type?: "function"; function: { name?: string; arguments: string } }[];
}

/**
 * One choice's stream. Named calls stream their arguments as they come; required and auto are
 * held back from the first possible call on (auto: from a prefix of the format's marker) and
 * sent whole when the choice finishes.
 */
export class ToolStream {
  private held = "";
  private holding = false;
  private started = false;
  /** Set once any call was sent: the choice finishes with "tool_calls". */
  madeCalls = false;

  constructor(
    private readonly plan: ToolPlan,
    private readonly parser: ToolCallParserName,
  ) {}

  /** The delta for `text`; `finished` flushes what was held. */
  push(text: string, finished: boolean): ToolDelta | null {
    const { choice } = this.plan;
    if (choice === "none") return text === "" ? null : { content: text };
    if (typeof choice === "object") {
      const first = !this.started;
      this.started = true;
      this.madeCalls = true;
      if (!first && text === "") return null;
      const fn = first ? { name: choice.name, arguments: text } : { arguments: text };
      return { tool_calls: [{ index: 0, ...(first ? { id: newCallId(), type: "function" as const } : {}), function: fn }] };
    }
    this.held += text;
    if (choice === "auto" && !this.holding) {
      const cut = holdFrom(this.held, callMarker(this.parser), this.parser === "llama3_json");
      if (cut < 0 && !finished) {
        const out = this.held;
        this.held = "";
        return out === "" ? null : { content: out };
      }
      if (cut > 0 && !finished) {
        const out = this.held.slice(0, cut);
        this.held = this.held.slice(cut);
        this.holding = this.held.startsWith(callMarker(this.parser));
        return { content: out };
      }
      if (cut === 0 && this.held.length >= callMarker(this.parser).length) this.holding = true;
    }
    if (!finished) return null;
    const message = toolMessage(this.plan, this.parser, this.held);
    this.held = "";
    if (!message.tool_calls?.length) return message.content ? { content: message.content } : null;
    this.madeCalls = true;
    const delta: ToolDelta = {
      tool_calls: message.tool_calls.map((c, index) => ({ index, id: c.id, type: "function" as const, function: { name: c.function.name, arguments: c.function.arguments } })),
    };
    if (message.content) delta.content = message.content;
    return delta;
  }
}

/**
 * Where a stream must start holding text back: the marker's position, or where a prefix of it
 * ends the text (it may be completed by the next delta); -1 = nowhere. `atStartOnly`: the format
 * (Llama 3 JSON) is a call only when the whole output is one.
 */
function holdFrom(text: string, marker: string, atStartOnly: boolean): number {
  if (atStartOnly) {
    const t = text.trimStart();
    if (t === "") return 0;
    return t.startsWith(marker) || t.startsWith("<|python_tag|>") || "<|python_tag|>".startsWith(t) ? 0 : -1;
  }
  const at = text.indexOf(marker);
  if (at >= 0) return at;
  for (let k = Math.min(marker.length - 1, text.length); k > 0; k--) if (text.endsWith(marker.slice(0, k))) return text.length - k;
  return -1;
}
