import { describe, expect, test } from "bun:test";
import { byteFallbackTokenizer, byteLevelTokenizer } from "../../test/helpers/tokenizer-fixtures";
import { ChatTemplateError, renderChat, selectTemplate, strftime } from "./chatTemplate";
import type { ChatMessage } from "./chatTemplate";
import { Tokenizer } from "./tokenizer";

const llama3 = Tokenizer.fromJSON(byteLevelTokenizer());
const llama2 = Tokenizer.fromJSON(byteFallbackTokenizer());

function caught(fn: () => unknown): ChatTemplateError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ChatTemplateError);
    return e as ChatTemplateError;
  }
  throw new Error("expected a throw");
}

describe("renderChat", () => {
  const messages: ChatMessage[] = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
  ];

  test("llama-3 style template with a generation prompt", () => {
    expect(renderChat(llama3, messages)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    expect(renderChat(llama3, messages, { addGenerationPrompt: false })).not.toContain("assistant");
  });

  test("rendered prompt encodes with one BOS when special tokens are not added again", () => {
    const ids = llama3.encode(renderChat(llama3, messages), { addSpecialTokens: false });
    expect(ids.filter((id) => id === llama3.bosTokenId).length).toBe(1);
    expect(ids[0]).toBe(llama3.bosTokenId!);
  });

  test("bos/eos variables and raise_exception (mistral/llama-2 style)", () => {
    const chat: ChatMessage[] = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello" },
      { role: "user", content: "Bye" },
    ];
    expect(renderChat(llama2, chat)).toBe("<s>[INST] Hi [/INST]Hello</s>[INST] Bye [/INST]");
    const err = caught(() => renderChat(llama2, [{ role: "assistant", content: "x" }]));
    expect(err.message).toBe("Conversation roles must alternate user/assistant/user/assistant/...");
    expect(err.fromTemplate).toBe(true);
  });

  test("array content of text parts is flattened; other parts are refused", () => {
    const parts: ChatMessage = { role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] };
    expect(renderChat(llama2, [parts])).toBe("<s>[INST] a\nb [/INST]");
    const img: ChatMessage = { role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] };
    expect(caught(() => renderChat(llama2, [img])).message).toMatch(/"image_url" is not supported/);
  });

  test("override template, tools, extra variables", () => {
    const t = "{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}{{ tools | length }}|{{ flavor }}";
    expect(renderChat(llama3, messages, { template: t, tools: [{ type: "function" }], extra: { flavor: "x" } })).toBe(
      "system=Be brief.;user=Hi;1|x",
    );
  });

  test("no template: a clear error unless one is given", () => {
    const bare = { chatTemplates: {}, bosToken: null, eosToken: null };
    const err = caught(() => renderChat(bare, messages));
    expect(err.message).toMatch(/has no chat template/);
    expect(err.fromTemplate).toBe(false);
    expect(renderChat(bare, messages, { template: "{{ messages[1].content }}" })).toBe("Hi");
  });

  test("named templates: tool_use when tools are given", () => {
    const src = { chatTemplates: { default: "D", tool_use: "T" }, bosToken: null, eosToken: null };
    expect(selectTemplate(src)).toBe("D");
    expect(selectTemplate(src, { tools: [{}] })).toBe("T");
  });

  test("syntax and runtime errors become ChatTemplateError", () => {
    const bare = { chatTemplates: {}, bosToken: null, eosToken: null };
    expect(caught(() => renderChat(bare, messages, { template: "{% for %}" })).message).toMatch(/does not parse/);
    expect(caught(() => renderChat(bare, messages, { template: "{{ messages[0].content.nope() }}" })).message).toMatch(
      /failed to render/,
    );
  });

  test("globals real templates use: strftime_now, namespace, range, tojson, none", () => {
    const t =
      '{%- if not date_string is defined %}{%- set date_string = strftime_now("%d %b %Y") %}{%- endif %}' +
      "{%- set ns = namespace(n=0) %}{%- for i in range(3) %}{%- set ns.n = ns.n + i %}{%- endfor %}" +
      "{{ date_string }}|{{ ns.n }}|{{ tools | tojson }}|{{ documents is none }}";
    const bare = { chatTemplates: { default: t }, bosToken: null, eosToken: null };
    const out = renderChat(bare, messages, { tools: [{ a: 1 }] });
    expect(out).toMatch(/^\d\d [A-Z][a-z]{2} \d{4}\|3\|\[\{"a": 1\}\]\|true$/);
    expect(renderChat(bare, messages, { extra: { date_string: "1 Jan 2000" } })).toBe("1 Jan 2000|3|null|true");
  });
});

test("strftime in the C locale", () => {
  const d = new Date(2024, 6, 26, 9, 5, 7);
  expect(strftime(d, "%d %b %Y")).toBe("26 Jul 2024");
  expect(strftime(d, "%A %B %y-%m-%d %H:%M:%S %p %j %%")).toBe("Friday July 24-07-26 09:05:07 AM 208 %");
});
