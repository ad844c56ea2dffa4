/**
 * GrammarCache: compiles StructuredOutputs with XGrammar (@mlc-ai/web-xgrammar, its C++ core in
 * WebAssembly) for one model's vocabulary, and keeps the compiled grammars by key (LRU), so a
 * schema that every request of an app sends is compiled once. It lives in the grammar Worker
 * (worker/grammarService.ts): compiling a large schema takes up to seconds of synchronous
 * WebAssembly, never on the engine's thread.
 */
import type { CompiledGrammar } from "@mlc-ai/web-xgrammar";
import { GrammarCompiler, Testings, TokenizerInfo } from "@mlc-ai/web-xgrammar";
import { rewriteBoundedStrings } from "./boundedStrings";
import type { GrammarVocab } from "./vocab";
import type { StructuredOutput } from "./spec";
import { checkStructuredOutput, choiceGrammar, grammarKey } from "./spec";
import { GrammarError } from "./grammarErrors";

export { GrammarError } from "./grammarErrors";

/** Compiled grammars kept (each holds its per-token-class mask cache, ~100 KB-1 MB at 128K vocab). */
export const DEFAULT_GRAMMAR_CACHE_SIZE = 256;

/** How long an evicted grammar stays alive for callers that already hold it. */
const EVICT_DISPOSE_MS = 60_000;

/** Compile options of JSON: one line, compact separators, no free whitespace (see compileJson). */
const JSON_OPTIONS = { anyWhitespace: false, indent: -1, separators: [",", ":"] as [string, string] };

export class GrammarCache {
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();
  /** Milliseconds spent compiling (cache misses), for the bench and /metrics. */
  readonly stats = { compiles: 0, hits: 0, compileMs: 0 };
  /** Called with the key of each grammar the LRU evicts. */
  onEvict: (key: string) => void = () => {};

  private constructor(
    private readonly compiler: GrammarCompiler,
    readonly vocabSize: number,
    private readonly capacity: number,
  ) {}

  /** Builds the tokenizer info and compiler of a vocabulary; `stopTokenIds` end a grammar. */
  static async create(vocab: GrammarVocab, stopTokenIds: number[], capacity = DEFAULT_GRAMMAR_CACHE_SIZE): Promise<GrammarCache> {
    const info = await TokenizerInfo.createTokenizerInfo(vocab.encoded, vocab.vocabType, vocab.prependSpace, vocab.encoded.length, stopTokenIds);
    const compiler = await GrammarCompiler.createGrammarCompiler(info);
    return new GrammarCache(compiler, vocab.encoded.length, capacity);
  }

  /** The compiled grammar of `s`, from the cache or compiled now. @throws GrammarError */
  async get(s: StructuredOutput): Promise<CompiledGrammar> {
    const bad = checkStructuredOutput(s);
    if (bad) throw new GrammarError(bad);
    const key = grammarKey(s);
    const hit = this.cache.get(key);
    if (hit) {
      this.stats.hits++;
      this.cache.delete(key); // re-insert: Map order is the LRU order
      this.cache.set(key, hit);
      return hit;
    }
    const compiled = this.compile(s);
    this.cache.set(key, compiled);
    compiled.catch(() => this.cache.delete(key)); // a failure is not cached
    while (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next().value!;
      const evicted = this.cache.get(oldest)!;
      this.cache.delete(oldest);
      this.onEvict(oldest);
      // Matchers hold their own reference to the grammar's data; the delay covers a caller that
      // got this promise but has not made its matchers yet.
      setTimeout(() => void evicted.then((g) => g.dispose(), () => {}), EVICT_DISPOSE_MS).unref?.();
    }
    return compiled;
  }

  private async compile(s: StructuredOutput): Promise<CompiledGrammar> {
    const t0 = performance.now();
    try {
      return await this.compileUncached(s);
    } catch (e) {
      throw new GrammarError(`cannot compile the ${s.type} constraint: ${messageOf(e)}`);
    } finally {
      this.stats.compiles++;
      this.stats.compileMs += performance.now() - t0;
    }
  }

  private compileUncached(s: StructuredOutput): Promise<CompiledGrammar> {
    const c = this.compiler;
    switch (s.type) {
      case "json":
        return this.compileJson(s.schema);
      case "regex":
        return c.compileStructuralTag({ type: "structural_tag", format: { type: "regex", pattern: s.pattern } });
      case "choice":
        return c.compileGrammar(choiceGrammar(s.choices));
      case "grammar":
        return c.compileGrammar(s.grammar);
      case "structural_tag":
        return c.compileStructuralTag(parseJson(s.tag, "structural tag"));
    }
  }

  /**
   * JSON for a schema, or any JSON object without one. Compact (no free whitespace): a weak or
   * random model otherwise fills its budget with spaces and newlines, as vLLM's
   * disable_any_whitespace guards against; the text is the same JSON. A schema with length-bounded
   * strings compiles from XGrammar's own EBNF of it with those rules rewritten (boundedStrings.ts:
   * the same language, masks 100x cheaper inside such strings).
   */
  private async compileJson(schema: string | undefined): Promise<CompiledGrammar> {
    const { anyWhitespace, indent, separators } = JSON_OPTIONS;
    if (schema === undefined) return this.compiler.compileJSONSchema('{"type": "object"}', anyWhitespace, indent, separators, false);
    const parsed = parseJson(schema, "JSON schema");
    if (typeof parsed !== "object" && typeof parsed !== "boolean") throw new GrammarError("a JSON schema must be an object or a boolean");
    const whole = () => this.compiler.compileJSONSchema(schema, anyWhitespace, indent, separators, true);
    let rewritten: string;
    try {
      const ebnf = await Testings._jsonSchemaToEBNF(schema, anyWhitespace, indent, separators, true);
      rewritten = rewriteBoundedStrings(ebnf);
      if (rewritten === ebnf) return whole();
    } catch {
      return whole(); // the schema's own error comes from XGrammar's compile, as without the rewrite
    }
    try {
      return await this.compiler.compileGrammar(rewritten, "root");
    } catch {
      return whole(); // an EBNF the rewrite got wrong must never cost the request
    }
  }

  dispose(): void {
    for (const g of this.cache.values()) void g.then((x) => x.dispose(), () => {});
    this.cache.clear();
    this.compiler.dispose();
  }
}

function parseJson(text: string, what: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new GrammarError(`the ${what} is not valid JSON: ${messageOf(e)}`);
  }
}

/** XGrammar throws C++ exceptions as numbers or strings through WebAssembly; make them text. */
function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === "string" ? e : `XGrammar error ${String(e)}`;
}
