/**
 * Small hand-made tokenizer.json files of the two families real LLMs use, for tests:
 *
 *  - byteLevelTokenizer(): GPT-2 / Llama-3 style byte-level BPE. Every byte is a vocabulary
 *    char (bytes_to_unicode); merges build "Hello", "Ġworld", part of 你 and of 😀, so some
 *    tokens hold half a UTF-8 character. Specials <|begin_of_text|>, <|end_of_text|>, <|eot_id|>.
 *  - byteFallbackTokenizer(): Llama-2 / Mistral style SentencePiece BPE with ▁ for spaces and
 *    <0xNN> byte-fallback pieces for characters outside the vocabulary (你, emoji). Specials
 *    <unk>, <s>, </s>.
 */

const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's reversible byte -> printable char map. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    out[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  }
  return out;
}

const byteChars = (s: string) => {
  const map = bytesToUnicode();
  return [...new TextEncoder().encode(s)].map((b) => map[b]!);
};

/** Merges that build `word` left to right (each as "left right"), plus the resulting tokens. */
function chainMerges(parts: string[]): { merges: string[]; tokens: string[] } {
  const merges: string[] = [];
  const tokens: string[] = [];
  let acc = parts[0]!;
  for (const p of parts.slice(1)) {
    merges.push(`${acc} ${p}`);
    acc += p;
    tokens.push(acc);
  }
  return { merges, tokens };
}

/** A byte-level BPE tokenizer.json (Llama-3 layout) and its tokenizer_config.json. */
export function byteLevelTokenizer() {
  const map = bytesToUnicode();
  const vocab: Record<string, number> = {};
  map.forEach((c, b) => (vocab[c] = b));
  const merges: string[] = [];
  const add = (parts: string[]) => {
    const m = chainMerges(parts);
    merges.push(...m.merges);
    for (const t of m.tokens) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  add(byteChars("Hello"));
  add(byteChars(" world"));
  add(byteChars("好")); // one token for a whole 3-byte char
  add(byteChars("你").slice(0, 2)); // 你 = E4 BD | A0: a token ending mid-character
  const smile = byteChars("😀"); // F0 9F | 98 80: split down the middle
  add(smile.slice(0, 2));
  add(smile.slice(2));
  const n = Object.keys(vocab).length;
  const specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"];
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => ({
      id: n + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    // Llama-3's own pre-tokenizer: its split regex, then bytes -> chars without GPT-2's regex.
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: LLAMA3_SPLIT }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "Sequence",
      processors: [
        { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [],
          special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [n], tokens: ["<|begin_of_text|>"] } },
        },
      ],
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
  };
  const tokenizerConfig = {
    bos_token: "<|begin_of_text|>",
    eos_token: "<|eot_id|>",
    clean_up_tokenization_spaces: true,
    chat_template:
      "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n" +
      "{{ m.content | trim }}<|eot_id|>{% endfor %}" +
      "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
  };
  return { tokenizer, tokenizerConfig, specialIds: { bos: n, endOfText: n + 1, eot: n + 2 } };
}

/** A SentencePiece-style BPE tokenizer.json with byte fallback (Llama-2 layout). */
export function byteFallbackTokenizer() {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  const merges: string[] = [];
  const piece = (p: string) => {
    if (!(p in vocab)) vocab[p] = Object.keys(vocab).length;
  };
  for (const c of ["▁", "H", "e", "l", "o", "w", "r", "d", "!", "好", "a", "b"]) piece(c);
  for (const word of [["▁", "H", "e", "l", "l", "o"], ["▁", "w", "o", "r", "l", "d"]]) {
    const m = chainMerges(word);
    merges.push(...m.merges);
    m.tokens.forEach(piece);
  }
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: ["<unk>", "<s>", "</s>"].map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "▁" },
        { type: "Replace", pattern: { String: " " }, content: "▁" },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", fuse_unk: true, byte_fallback: true, vocab, merges },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: { __type: "AddedToken", content: "<s>", lstrip: false, normalized: false, rstrip: false, single_word: false },
    eos_token: { __type: "AddedToken", content: "</s>", lstrip: false, normalized: false, rstrip: false, single_word: false },
    unk_token: "<unk>",
    legacy: false,
    chat_template:
      "{{ bos_token }}{% for message in messages %}" +
      "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
      "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
      "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
  };
  return { tokenizer, tokenizerConfig };
}
