/**
 * Chat templates: the Jinja template a model ships in tokenizer_config.json (or
 * chat_template.jinja) renders OpenAI-style messages into one prompt string.
 *
 * The rendered prompt already holds BOS when the template writes `{{ bos_token }}`, so encode it
 * with `addSpecialTokens: false`, as transformers' apply_chat_template does.
 */
import { Environment, Interpreter, Template } from "@huggingface/jinja";

/**
 * A template that cannot render: none available, a syntax error, or the template itself
 * rejecting the conversation via raise_exception (`fromTemplate`); the last is the caller's fault.
 */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
  constructor(
    message: string,
    /** True when the template's raise_exception refused the messages (a bad request). */
    readonly fromTemplate = false,
  ) {
    super(message);
  }
}

/** One text part of OpenAI's array form of message content. */
export interface ChatContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

/** One chat message; extra keys (name, tool_calls, tool_call_id...) reach the template as-is. */
export interface ChatMessage {
  role: string;
  content: string | ChatContentPart[] | null;
  [key: string]: unknown;
}

/** What a template needs from the tokenizer. */
export interface ChatTemplateSource {
  chatTemplates: Readonly<Record<string, string>>;
  bosToken: string | null;
  eosToken: string | null;
}

/** Options of {@link renderChat}. */
export interface RenderChatOptions {
  /** A template to use instead of the model's own. */
  template?: string;
  /** End with the assistant turn's opening so the model answers (default true). */
  addGenerationPrompt?: boolean;
  /** OpenAI-style tool definitions, passed to the template as `tools`. */
  tools?: unknown[];
  /** Extra template variables (e.g. enable_thinking), as chat_template_kwargs in vLLM. */
  extra?: Record<string, unknown>;
}

// Parsing a template costs far more than rendering it; a model has one or two.
const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message}`);
    }
    if (compiled.size >= 16) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/** The template to render with: an override, else "tool_use" when tools are given and it exists, else "default". */
export function selectTemplate(src: ChatTemplateSource, options: RenderChatOptions = {}): string {
  if (options.template !== undefined) return options.template;
  const named = src.chatTemplates;
  if (options.tools?.length && named.tool_use !== undefined) return named.tool_use;
  const t = named.default ?? Object.values(named)[0];
  if (t === undefined) {
    throw new ChatTemplateError(
      "this model has no chat template (none in tokenizer_config.json or chat_template.jinja); " +
        "pass one with --chat-template, or use the completions API",
    );
  }
  return t;
}

/** Renders `messages` into the prompt string the model was trained on. */
export function renderChat(src: ChatTemplateSource, messages: ChatMessage[], options: RenderChatOptions = {}): string {
  const template = compile(selectTemplate(src, options));
  // transformers always passes tools and documents, as None when absent; templates test `is none`.
  const context: Record<string, unknown> = {
    tools: options.tools ?? null,
    documents: null,
    ...options.extra,
    messages: messages.map(flattenContent),
    add_generation_prompt: options.addGenerationPrompt ?? true,
    bos_token: src.bosToken ?? "",
    eos_token: src.eosToken ?? "",
    raise_exception: (message: unknown) => {
      throw new ChatTemplateError(String(message), true);
    },
  };
  try {
    return render(template, context);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw e;
    throw new ChatTemplateError(`chat template failed to render: ${(e as Error).message}`);
  }
}

/**
 * Template.render, with our own globals: it declares raise_exception itself and refuses a
 * second one, and ours must throw a typed error.
 */
function render(template: Template, context: Record<string, unknown>): string {
  const env = new Environment();
  for (const [name, value] of Object.entries({ ...GLOBALS, ...context })) env.set(name, value);
  return (new Interpreter(env).run(template.parsed) as { value: string }).value;
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Python's strftime in the C locale, for the directives chat templates use (Llama 3.1: "%d %b %Y"). */
export function strftime(date: Date, format: string): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return format.replace(/%[YymdbBaAHMSjp%]/g, (d) => {
    switch (d) {
      case "%Y": return String(date.getFullYear());
      case "%y": return pad(date.getFullYear() % 100);
      case "%m": return pad(date.getMonth() + 1);
      case "%d": return pad(date.getDate());
      case "%b": return MONTHS[date.getMonth()]!.slice(0, 3);
      case "%B": return MONTHS[date.getMonth()]!;
      case "%a": return DAYS[date.getDay()]!.slice(0, 3);
      case "%A": return DAYS[date.getDay()]!;
      case "%H": return pad(date.getHours());
      case "%M": return pad(date.getMinutes());
      case "%S": return pad(date.getSeconds());
      case "%p": return date.getHours() < 12 ? "AM" : "PM";
      case "%j": {
        const start = new Date(date.getFullYear(), 0, 1);
        return String(Math.floor((date.getTime() - start.getTime()) / 86_400_000) + 1).padStart(3, "0");
      }
      default: return "%";
    }
  });
}

function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error("range() step must not be zero");
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const GLOBALS: Record<string, unknown> = {
  true: true, false: false, none: null, True: true, False: false, None: null,
  range,
  strftime_now: (format: string) => strftime(new Date(), format),
};

/** Text-only array content becomes one string: most templates only handle strings. */
function flattenContent(m: ChatMessage): ChatMessage {
  if (!Array.isArray(m.content)) return { ...m };
  const texts = m.content.map((part) => {
    if (part.type !== "text" || typeof part.text !== "string") {
      throw new ChatTemplateError(`message content part of type ${JSON.stringify(part.type)} is not supported (text only)`, true);
    }
    return part.text;
  });
  return { ...m, content: texts.join("\n") };
}
