// tool_choice "auto": calls parsed from canned outputs of each format, whole and streamed.
import { describe, expect, test } from "bun:test";
import { parseToolCalls } from "../../src/server/tools/toolParsers";
import type { ToolCallParserName } from "../../src/server/tools/toolParsers";
import { ToolStream, toolMessage } from "../../src/server/tools/toolResponse";
import type { ToolPlan } from "../../src/server/tools/toolRequest";
import { toolMessages } from "../../src/server/tools/toolMessages";

const PLAN: ToolPlan = { tools: [{ name: "get_weather" }, { name: "get_time" }], choice: "auto", parallel: true };
const CASES: [ToolCallParserName, string, string | null][] = [
  ["hermes", 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "cet"}}\n</tool_call>', "Let me check."],
  ["llama3_json", '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}; {"name": "get_time", "parameters": {"tz": "cet"}}', null],
  ["mistral", '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_time", "arguments": {"tz": "cet"}}]', null],
  ["mistral", '[TOOL_CALLS]get_weather{"city": "Oslo"}[TOOL_CALLS]get_time{"tz": "cet"}', null],
];

describe("auto tool-call parsers", () => {
  for (const [parser, text, content] of CASES) {
    test(`${parser}: ${text.slice(0, 30)}`, () => {
      const out = parseToolCalls(parser, text);
      expect(out.content).toBe(content);
      expect(out.calls).toEqual([{ name: "get_weather", arguments: '{"city":"Oslo"}' }, { name: "get_time", arguments: '{"tz":"cet"}' }]);
      const msg = toolMessage(PLAN, parser, text);
      expect(msg.tool_calls!.map((c) => c.function.name)).toEqual(["get_weather", "get_time"]);
    });

    test(`${parser} streamed in 3-character deltas: content first, calls whole at the end`, () => {
      const s = new ToolStream(PLAN, parser);
      let streamed = "";
      const calls: { name?: string; arguments: string }[] = [];
      for (let i = 0; i < text.length; i += 3) {
        const d = s.push(text.slice(i, i + 3), i + 3 >= text.length);
        streamed += d?.content ?? "";
        for (const c of d?.tool_calls ?? []) calls[c.index] = c.function;
      }
      expect(s.madeCalls).toBe(true);
      expect(streamed.trim()).toBe(content ?? "");
      expect(calls.map((c) => c.name)).toEqual(["get_weather", "get_time"]);
    });
  }

  test("text without a call, malformed JSON and unknown functions stay content", () => {
    expect(toolMessage(PLAN, "hermes", "Just text.")).toEqual({ content: "Just text." });
    expect(toolMessage(PLAN, "hermes", "<tool_call>{broken</tool_call>").tool_calls).toBeUndefined();
    expect(toolMessage(PLAN, "llama3_json", '{"name": "rm_rf", "parameters": {}}').tool_calls).toBeUndefined();
    const s = new ToolStream(PLAN, "hermes");
    expect(s.push("Hello <to", false)).toEqual({ content: "Hello " });
    expect(s.push("ol", false)).toBeNull();
    expect(s.push("box> there", true)).toEqual({ content: "<toolbox> there" });
  });
});

describe("tool turns for a template without tool support", () => {
  test("tools go to a system message, calls into Hermes text, tool results to user turns", () => {
    const template = "{% for message in messages %}{{ message['role'] + message['content'] }}{% endfor %}";
    const { messages, passTools } = toolMessages(
      [
        { role: "user", content: "Weather?" },
        { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }] },
        { role: "tool", content: "-3 C", tool_call_id: "c1" },
      ],
      PLAN.tools,
      template,
    );
    expect(passTools).toBe(false);
    expect(messages[0]!.role).toBe("system");
    expect(messages[0]!.content).toContain('"name":"get_weather"');
    expect(messages[2]!.content).toBe('<tool_call>\n{"name":"get_weather","arguments":{"city":"Oslo"}}\n</tool_call>');
    expect(messages[3]!.role).toBe("user");
  });

  test("a template that knows tools gets them as they are, arguments as objects", () => {
    const template = "{% for m in messages %}{% if m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}{% endfor %}{{ tools | tojson }}";
    const { messages, passTools } = toolMessages(
      [{ role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: '{"a":1}' } }] }],
      PLAN.tools,
      template,
    );
    expect(passTools).toBe(true);
    expect((messages[0]!.tool_calls as any)[0].function.arguments).toEqual({ a: 1 });
  });
});
