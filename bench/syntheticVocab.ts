/**
 * A synthetic byte-level BPE vocabulary (GPT-2 / Llama 3 / Qwen2 style) of any size, for measuring
 * XGrammar at real vocab sizes (32K, 128K) where no real tokenizer can be downloaded. It is what
 * EngineGrammars gives XGrammar (vocab.ts): token strings in the byte-to-unicode alphabet
 * ("Ġ" = space, "Ċ" = newline), vocab type byte_level, and one stop token last.
 *
 *   ids: [0, 256)          the 256 single bytes
 *        [256, ...)        whitespace runs and indents, numbers 0-999, punctuation runs, common
 *                          English and code words (lower/Capital/UPPER, with and without "Ġ",
 *                          with suffixes), then seeded pseudo-words: English-like syllables,
 *                          accented Latin, Cyrillic, CJK, camelCase/snake_case identifiers
 *        size - 1          "<|endoftext|>" (the stop token)
 *
 * Deterministic for a seed, and a smaller vocab is a prefix of a larger one (ids ranked as a
 * trained vocab's merges are), so the trie XGrammar preprocesses has real shared prefixes.
 */
import type { GrammarVocab } from "../src/grammar/vocab";

/** GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 on. */
const BYTE_TO_CHAR: string[] = (() => {
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return out;
})();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** Text as a byte-level token string. */
export function encodeByteLevel(text: string): string {
  let s = "";
  for (const b of new TextEncoder().encode(text)) s += BYTE_TO_CHAR[b];
  return s;
}

/** The bytes of a byte-level token string. @throws on a character outside the alphabet */
export function decodeByteLevel(token: string): Uint8Array {
  return Uint8Array.from([...token], (c) => {
    const b = CHAR_TO_BYTE.get(c);
    if (b === undefined) throw new Error(`not a byte-level character: ${c}`);
    return b;
  });
}

export const STOP_TOKEN = "<|endoftext|>";

const WORDS = (
  "the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were " +
  "her she there one all we their been has when who will more no if out so said what up its about into than them can only " +
  "other new some could time these two may then do first any my now such like our over man me even most made after also " +
  "did many before must through back years where much your way well down should because each just those people how too " +
  "little state good very make world still own see men work long get here between both life being under never day same " +
  "another know while last might us great old year off come since against go came right used take three name value data " +
  "type number string true false null list item items id user email address city country price total count status date " +
  "time message error result response request key text content title description version config error info level " +
  "function return const let var class import export from async await interface extends implements public private " +
  "static void int float double bool char struct enum case switch break continue default try catch throw new delete " +
  "self def lambda yield print len range dict set tuple none elif else while for in is not and or pass raise with as " +
  "console log length push map filter reduce props state render component index args kwargs options params result"
).split(" ");
const SUFFIXES = ["s", "ed", "ing", "er", "ly", "tion", "al", "ment", "ness", "able", "ize", "es", "ers", "ity"];
const PUNCT = (
  "() (); ): {} [] => == === != !== -> :: // /* */ ... -- ** \", \": \"} \"] \":\" \",\" ', ' {\" [\" </ /> && || += -= " +
  "<= >= ## ### ``` ); }; }, ], ]) ), (\" \") ?. ?? ${ }} {{ %) .* ./ ../ \\n \\\" '' \"\" ;; ,\" .\" ,' :' := #! @@ ~/"
).split(" ");
const ONSETS = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "ch", "cl", "cr", "dr", "fl", "fr", "gr", "pl", "pr", "sh", "sk", "sl", "sp", "st", "str", "th", "tr", "wh"];
const VOWELS = ["a", "e", "i", "o", "u", "y", "ai", "ea", "ee", "io", "ou", "oo", "ie"];
const CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "nt", "rs", "st", "ck", "ct", "x", "ll", "ss"];
const ACCENTED = ["é", "è", "ê", "à", "â", "ç", "ô", "ü", "ö", "ä", "ñ", "í", "ó", "ú", "ß", "ø", "å"];
const CYRILLIC_ONSETS = ["", "б", "в", "г", "д", "ж", "з", "к", "л", "м", "н", "п", "р", "с", "т", "ст", "пр", "кр"];
const CYRILLIC_VOWELS = ["а", "е", "и", "о", "у", "ы", "я", "ю"];

/** mulberry32: a small seeded PRNG (uniform in [0, 1)). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The texts after the byte tokens, fixed lists first, then pseudo-words forever. */
function* texts(seed: number): Generator<string> {
  for (let k = 2; k <= 16; k++) yield " ".repeat(k);
  for (const nl of ["\n", "\n\n", "\n\n\n", "\r\n", "\t", "\t\t", "\t\t\t"]) yield nl;
  for (let k = 1; k <= 16; k++) yield "\n" + " ".repeat(k);
  for (let n = 0; n < 1000; n++) yield String(n);
  for (let n = 0; n < 100; n++) yield " " + String(n);
  for (const p of PUNCT) yield* [p, " " + p, p + "\n"];
  for (const c of ".,;:!?{}[]()") yield* [c + "\n", c + "\n\n", c + " "];
  const cases = (w: string) => [w, w[0]!.toUpperCase() + w.slice(1), w.toUpperCase()];
  for (const w of WORDS) for (const v of cases(w)) yield* [" " + v, v];
  for (const w of WORDS) for (const s of SUFFIXES) yield* [" " + w + s, w + s];
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const syllables = (n: number, onsets: readonly string[], vowels: readonly string[], codas: readonly string[]) =>
    Array.from({ length: n }, () => pick(onsets) + pick(vowels) + pick(codas)).join("");
  for (;;) {
    const r = rand(), space = rand() < 0.55 ? " " : "", n = 1 + Math.floor(rand() * 3);
    if (r < 0.6) {
      const w = syllables(n, ONSETS, VOWELS, CODAS);
      yield space + (rand() < 0.2 ? w[0]!.toUpperCase() + w.slice(1) : w);
    } else if (r < 0.72) yield space + syllables(n, ONSETS, [...VOWELS, ...ACCENTED], CODAS);
    else if (r < 0.82) yield space + syllables(n, CYRILLIC_ONSETS, CYRILLIC_VOWELS, ["", "", "н", "т", "й", "л"]);
    else if (r < 0.92) yield Array.from({ length: 1 + Math.floor(rand() * 2) }, () => String.fromCodePoint(0x4e00 + Math.floor(rand() * 3500))).join("");
    else {
      const a = pick(WORDS), b = pick(WORDS);
      yield space + (rand() < 0.5 ? a + b[0]!.toUpperCase() + b.slice(1) : `${a}_${b}`);
    }
  }
}

/** A byte-level vocab of exactly `size` unique tokens (>= 512), the stop token last. */
export function syntheticByteLevelVocab(size: number, seed = 1): GrammarVocab & { stopTokenIds: number[] } {
  if (!Number.isInteger(size) || size < 512) throw new Error(`synthetic vocab size must be an integer >= 512, got ${size}`);
  const seen = new Set<string>(BYTE_TO_CHAR);
  const encoded = [...BYTE_TO_CHAR];
  for (const t of texts(seed)) {
    if (encoded.length === size - 1) break;
    const token = encodeByteLevel(t);
    if (token.length < 2 || seen.has(token) || token === STOP_TOKEN) continue;
    seen.add(token);
    encoded.push(token);
  }
  encoded.push(STOP_TOKEN);
  return { encoded, vocabType: "byte_level", prependSpace: false, stopTokenIds: [size - 1] };
}

/** Greedy longest-match ids of `text` in `encoded` (not BPE's merges, but a valid tokenization). */
export function greedyTokenize(encoded: readonly string[], text: string): number[] {
  const ids = new Map<string, number>();
  let longest = 0;
  encoded.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
    longest = Math.max(longest, t.length);
  });
  const s = encodeByteLevel(text), out: number[] = [];
  for (let i = 0; i < s.length; ) {
    for (let n = Math.min(longest, s.length - i); n > 0; n--) {
      const id = ids.get(s.slice(i, i + n));
      if (id !== undefined) {
        out.push(id);
        i += n;
        break;
      }
    }
  }
  return out;
}
