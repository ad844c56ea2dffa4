/**
 * The vocabulary XGrammar needs (TokenizerInfo): every token's encoded string by id, and how to
 * decode it, read from tokenizer.json as XGrammar's Python `TokenizerInfo.from_huggingface` does:
 *   byte_level     GPT-2 style byte-to-unicode tokens (a ByteLevel decoder): Llama 3, Qwen2
 *   byte_fallback  sentencepiece "▁" tokens with <0xAB> byte tokens: Llama 2, Mistral
 *   raw            tokens are their text
 */
type Json = Record<string, unknown>;

export type VocabType = "byte_level" | "byte_fallback" | "raw";

export interface GrammarVocab {
  /** [vocabSize] token strings as tokenizer.json spells them ("" past the tokenizer's ids). */
  encoded: string[];
  vocabType: VocabType;
  /** The tokenizer prepends a space to the text (sentencepiece's add_dummy_prefix). */
  prependSpace: boolean;
}

function parts(node: unknown): Json[] {
  if (typeof node !== "object" || node === null) return [];
  const n = node as Json;
  const inner = (n.decoders ?? n.pretokenizers ?? n.normalizers) as unknown[] | undefined;
  return Array.isArray(inner) ? inner.flatMap(parts) : [n];
}

/** The vocab type and space handling of a parsed tokenizer.json. */
export function vocabTypeOf(tokenizerJson: Json): Pick<GrammarVocab, "vocabType" | "prependSpace"> {
  const model = (tokenizerJson.model ?? {}) as Json;
  const decoders = parts(tokenizerJson.decoder);
  if (decoders.some((d) => d.type === "ByteLevel")) return { vocabType: "byte_level", prependSpace: false };
  const normalizers = parts(tokenizerJson.normalizer);
  const preTokenizers = parts(tokenizerJson.pre_tokenizer);
  const prependSpace =
    normalizers.some((n) => n.type === "Prepend" && n.prepend === "▁") ||
    preTokenizers.some((p) => p.type === "Metaspace" && (p.prepend_scheme ?? "always") !== "never" && p.add_prefix_space !== false);
  if (model.byte_fallback === true || decoders.some((d) => d.type === "ByteFallback")) return { vocabType: "byte_fallback", prependSpace };
  return { vocabType: "raw", prependSpace };
}

/**
 * The grammar vocabulary of `vocabSize` ids (the model's logits, which may exceed the tokenizer's
 * ids: those get "" and are never allowed). `idToToken` is the tokenizer's own lookup.
 */
export function grammarVocab(tokenizerJson: Json, vocabSize: number, idToToken: (id: number) => string | undefined): GrammarVocab {
  const encoded = new Array<string>(vocabSize);
  for (let id = 0; id < vocabSize; id++) encoded[id] = idToToken(id) ?? "";
  return { encoded, ...vocabTypeOf(tokenizerJson) };
}
