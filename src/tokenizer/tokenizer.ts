/**
 * A model's tokenizer: tokenizer.json run by @huggingface/tokenizers, plus what
 * tokenizer_config.json and generation_config.json add (BOS/EOS, add_bos_token, chat templates).
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { realPathInside } from "../model/insideDir";
import type { ChatMessage, RenderChatOptions } from "./chatTemplate";
import { ChatTemplateError } from "./chatTemplate";
import type { TokenizerFiles } from "./tokenizerFiles";
import type { TokenizerSource } from "./tokenizerPool";
import { TokenizerPool } from "./tokenizerPool";
import type { TaskError, TaskResult, TokenizerTask } from "./tokenizerTasks";
import { runTask, taskCost } from "./tokenizerTasks";

/** A tokenizer directory that is missing files or holds ones we cannot read. */
export class TokenizerError extends Error {
  override name = "TokenizerError";
}

type Json = Record<string, unknown>;

export type { TokenizerFiles };

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Add BOS/EOS as the model's tokenizer does (default true). Off for rendered chat prompts. */
  addSpecialTokens?: boolean;
}

/**
 * Texts (all of one call) up to this many characters are encoded inline: about 2 ms at the
 * measured 0.2-0.4 µs a character, cheaper than a worker round trip is worth.
 */
export const INLINE_ENCODE_CHARS = 8192;

/** Slack for normalizers that shorten text before it is split into tokens (e.g. NFKC composition). */
const NORMALIZER_SLACK = 4;

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, <|eot_id|>...) from the text (default false). */
  skipSpecialTokens?: boolean;
  /**
   * Apply transformers' clean_up_tokenization (" ." -> ".", " n't" -> "n't"); default false,
   * as in vLLM's streamed output: it is not stable under appending tokens.
   */
  cleanUpTokenizationSpaces?: boolean;
}

/** Encodes text to ids and back, knows the special tokens and chat templates of a model. */
export class Tokenizer {
  /** EOS ids: generation_config.json eos_token_id (number or list), then tokenizer_config's eos_token. */
  readonly eosTokenIds: number[];
  readonly bosTokenId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** One past the largest id the tokenizer knows (may be below config.json vocab_size). */
  readonly vocabSize: number;
  /** Chat templates by name ("default" for a single one); empty when the model has none. */
  readonly chatTemplates: Readonly<Record<string, string>>;
  /** Characters of the longest token (vocabulary or added): no token spells more text than this. */
  readonly maxTokenChars: number;
  /** Explicit add_bos_token / add_eos_token of tokenizer_config.json (null: the post-processor decides). */
  readonly addBosToken: boolean | null;
  readonly addEosToken: boolean | null;
  /** generation_config.json as read ({} when absent): the server takes sampling defaults from it. */
  readonly generationConfig: Readonly<Json>;
  private readonly specialIds: ReadonlySet<number>;
  /** Workers for long texts, started on first need (see tokenizerPool.ts). */
  private pool: TokenizerPool | null = null;

  private constructor(
    private readonly hf: HfTokenizer,
    files: TokenizerFiles,
    private readonly source: TokenizerSource,
  ) {
    const tc = files.tokenizerConfig ?? {};
    const gc = files.generationConfig ?? {};
    this.generationConfig = gc;
    const vocab = (hf.model as unknown as { vocab: unknown[] }).vocab;
    this.vocabSize = vocab.length;
    this.bosToken = tokenString(tc.bos_token);
    this.eosToken = tokenString(tc.eos_token);
    this.bosTokenId = this.bosToken !== null ? (hf.token_to_id(this.bosToken) ?? null) : null;
    const eos = new Set<number>();
    const gcEos = gc.eos_token_id;
    for (const id of Array.isArray(gcEos) ? gcEos : gcEos != null ? [gcEos] : []) {
      if (Number.isInteger(id)) eos.add(id as number);
    }
    const tcEos = this.eosToken !== null ? hf.token_to_id(this.eosToken) : undefined;
    if (tcEos !== undefined) eos.add(tcEos);
    this.eosTokenIds = [...eos];
    this.addBosToken = typeof tc.add_bos_token === "boolean" ? tc.add_bos_token : null;
    this.addEosToken = typeof tc.add_eos_token === "boolean" ? tc.add_eos_token : null;
    this.chatTemplates = readChatTemplates(tc.chat_template, files.chatTemplateJinja);
    const added = [...hf.get_added_tokens_decoder()];
    this.specialIds = new Set(added.filter(([, t]) => t.special).map(([id]) => id));
    let longest = 1;
    for (const t of vocab) if (typeof t === "string" && t.length > longest) longest = t.length;
    for (const [, t] of added) longest = Math.max(longest, t.content.length);
    this.maxTokenChars = longest;
  }

  /** Reads tokenizer.json (required), tokenizer_config.json, generation_config.json, chat_template.jinja. */
  static fromDir(dir: string): Tokenizer {
    const path = join(dir, "tokenizer.json");
    if (!existsSync(path)) {
      throw new TokenizerError(`${dir} has no tokenizer.json (sentencepiece-only tokenizer.model is not supported)`);
    }
    const read = (name: string): Json | undefined => {
      const p = inside(dir, name);
      if (p === undefined) return undefined;
      try {
        return JSON.parse(readFileSync(p, "utf8"));
      } catch (e) {
        throw new TokenizerError(`${p} is not valid JSON: ${(e as Error).message}`);
      }
    };
    const jinja = inside(dir, "chat_template.jinja");
    const chatJson = read("chat_template.json");
    const tokenizerConfig = read("tokenizer_config.json") ?? {};
    if (chatJson?.chat_template !== undefined && tokenizerConfig.chat_template === undefined) {
      tokenizerConfig.chat_template = chatJson.chat_template;
    }
    const files: TokenizerFiles = {
      tokenizer: read("tokenizer.json")!,
      tokenizerConfig,
      generationConfig: read("generation_config.json"),
      chatTemplateJinja: jinja !== undefined ? readFileSync(jinja, "utf8") : undefined,
    };
    // Workers read the directory themselves rather than be sent megabytes of parsed JSON.
    return Tokenizer.build(files, { dir });
  }

  /** Builds a tokenizer from parsed files (tests, or files fetched elsewhere). */
  static fromJSON(files: TokenizerFiles): Tokenizer {
    return Tokenizer.build(files, { files });
  }

  private static build(files: TokenizerFiles, source: TokenizerSource): Tokenizer {
    let hf: HfTokenizer;
    try {
      hf = new HfTokenizer(files.tokenizer, files.tokenizerConfig ?? {});
    } catch (e) {
      throw new TokenizerError(`cannot build tokenizer from tokenizer.json: ${(e as Error).message}`);
    }
    return new Tokenizer(hf, files, source);
  }

  /**
   * The most characters a text of `numTokens` tokens can have: no token spells more than
   * maxTokenChars, with slack for normalizers that shorten text. A longer text cannot fit, so it
   * can be refused without being tokenized.
   */
  maxCharsFor(numTokens: number): number {
    return NORMALIZER_SLACK * numTokens * this.maxTokenChars;
  }

  /**
   * Token ids of each text, as {@link encode} gives them, but off the calling thread when the
   * texts are long: they go to a small pool of workers (TokenizerBusyError when its queue is full).
   */
  async encodeMany(texts: readonly string[], options: EncodeOptions = {}): Promise<number[][]> {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const results = await this.runTasks(texts.map((text) => ({ type: "encode", text, addSpecialTokens })));
    return results.map((r) => r.ids);
  }

  /** {@link encodeMany} of one text. */
  async encodeAsync(text: string, options: EncodeOptions = {}): Promise<number[]> {
    return (await this.encodeMany([text], options))[0]!;
  }

  /**
   * Renders a chat with its template and encodes it (with no special tokens unless asked: the
   * template writes BOS), off the calling thread when the chat is long. Throws ChatTemplateError.
   */
  async encodeChat(messages: ChatMessage[], options: RenderChatOptions & EncodeOptions = {}): Promise<{ text: string; ids: number[] }> {
    const { addSpecialTokens = false, ...render } = options;
    const [result] = await this.runTasks([{ type: "chat", messages, options: render, addSpecialTokens }]);
    return { text: result!.text!, ids: result!.ids };
  }

  /** Runs tasks here when they are small (under INLINE_ENCODE_CHARS together), else in the workers. */
  private async runTasks(tasks: TokenizerTask[]): Promise<TaskResult[]> {
    const costs = tasks.map(taskCost);
    if (costs.reduce((n, c) => n + c, 0) <= INLINE_ENCODE_CHARS) return tasks.map((t) => runTask(this, t));
    this.pool ??= new TokenizerPool(this.source);
    try {
      return await this.pool.run(tasks, costs);
    } catch (e) {
      throw reviveTaskError(e as TaskError | Error);
    }
  }

  /** Stops the tokenizer's workers (idle ones never keep a process alive; this frees their memory). */
  close(): void {
    this.pool?.close();
    this.pool = null;
  }

  /** Token ids of `text`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const special = options.addSpecialTokens ?? true;
    if (!special || (this.addBosToken === null && this.addEosToken === null)) {
      return this.hf.encode(text, { add_special_tokens: special }).ids;
    }
    // An explicit add_bos_token/add_eos_token overrides the post-processor, as transformers'
    // Llama tokenizer rebuilds its template from them.
    const ids = this.hf.encode(text, { add_special_tokens: false }).ids;
    const eosId = this.eosToken !== null ? this.hf.token_to_id(this.eosToken) : undefined;
    if (this.addBosToken ?? this.postProcessorAdds(this.bosTokenId)) {
      if (this.bosTokenId !== null) ids.unshift(this.bosTokenId);
    }
    if (this.addEosToken && eosId !== undefined) ids.push(eosId);
    return ids;
  }

  private postProcessorAdds(id: number | null): boolean {
    return id !== null && this.hf.encode("", { add_special_tokens: true }).ids.includes(id);
  }

  /** Text of `ids`; ids the tokenizer does not know (embedding padding) decode to nothing. */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (this.idToToken(id) !== undefined) known.push(id);
    }
    if (known.length === 0) return "";
    return this.hf.decode(known, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? false,
    });
  }

  /** The token string of `id` (byte-level or ▁-marked, as in the vocabulary), or undefined. */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.hf.id_to_token(id) : undefined;
  }

  /** The id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** Whether `id` is a special added token (BOS, EOS, <|eot_id|>...). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }
}

/** A task's error from a worker, typed again: ChatTemplateError stays one (it may be the client's fault). */
function reviveTaskError(e: TaskError | Error): Error {
  if (e instanceof Error) return e;
  if (e.name === "ChatTemplateError") return new ChatTemplateError(e.message, e.fromTemplate ?? false);
  return new TokenizerError(e.message);
}

/**
 * `dir/name` when it exists (undefined when not); a link that leads out of the model directory
 * is a TokenizerError, so a model folder cannot make the server read other files.
 */
function inside(dir: string, name: string): string | undefined {
  const p = join(dir, name);
  if (!existsSync(p)) return undefined;
  if (realPathInside(dir, p) === null) throw new TokenizerError(`${p} links to ${realpathSync(p)}, outside the model directory ${dir}`);
  return p;
}

/** bos_token/eos_token are a string, an AddedToken object {content}, or null. */
function tokenString(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return null;
}

/** chat_template: a string, or a list of {name, template} (default, tool_use, rag...). */
function readChatTemplates(raw: unknown, jinja?: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof raw === "string") out.default = raw;
  else if (Array.isArray(raw)) {
    for (const t of raw) {
      if (t && typeof t.name === "string" && typeof t.template === "string") out[t.name] = t.template;
    }
  }
  // chat_template.jinja is what transformers itself prefers when both exist.
  if (jinja !== undefined) out.default = jinja;
  return out;
}
