// Length-bounded JSON strings rewritten for cheap masks (src/grammar/boundedStrings.ts): the
// rewrite's text, and that the rewritten grammar is the same constraint as XGrammar's own compile
// of the schema: on random walks (a third of the steps end or overrun a string on purpose) both
// matchers give bit-identical masks at every step and accept the same tokens, on the demo model's
// vocabulary and on a synthetic byte-level one with long tokens. Also through GrammarCache, the
// path every json constraint takes.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GrammarCompiler, GrammarMatcher, Testings, TokenizerInfo, type CompiledGrammar } from "@mlc-ai/web-xgrammar";
import { syntheticByteLevelVocab } from "../../bench/syntheticVocab";
import { twentyFieldSchema } from "../../bench/grammarOverhead";
import { MAX_CHAIN, rewriteBoundedStrings } from "../../src/grammar/boundedStrings";
import { GrammarCache } from "../../src/grammar/grammarCache";
import { grammarVocab, type GrammarVocab } from "../../src/grammar/vocab";
import { defaultModelDir } from "../../src/model/defaultModel";
import { Tokenizer } from "../../src/tokenizer/tokenizer";

const JSON_ARGS = [false, -1, [",", ":"] as [string, string], true] as const;

describe("the rewrite", () => {
  test("a bounded string rule becomes a chain that takes the closing quote itself", () => {
    const ebnf = 'string ::= "\\"" [^"\\\\\\r\\n]{1,3} "\\""\nroot ::= "{" string "}"';
    expect(rewriteBoundedStrings(ebnf).split("\n")).toEqual([
      'string ::= "\\"" string__q0',
      'string__q0 ::= [^"\\\\\\r\\n] string__q1',
      'string__q1 ::= "\\"" | [^"\\\\\\r\\n] string__q2',
      'string__q2 ::= "\\"" | [^"\\\\\\r\\n] string__q3',
      'string__q3 ::= "\\""',
      'root ::= "{" string "}"',
    ]);
  });

  test("exact lengths, name clashes, and what it leaves alone", () => {
    expect(rewriteBoundedStrings('s ::= "\\"" [a-z]{2} "\\""')).toBe('s ::= "\\"" s__q0\ns__q0 ::= [a-z] s__q1\ns__q1 ::= [a-z] s__q2\ns__q2 ::= "\\""');
    expect(rewriteBoundedStrings('s ::= "\\"" [a-z]{0,0} "\\""')).toBe('s ::= "\\"" s__q0\ns__q0 ::= "\\""'); // maxLength 0: only ""
    const clash = rewriteBoundedStrings('s ::= "\\"" [a-z]{0,1} "\\""\ns__q0 ::= "x"');
    expect(clash).toContain('s ::= "\\"" s__qq0');
    for (const same of [
      's ::= "\\"" [a-z]{2,} "\\""', // no upper bound
      `s ::= "\\"" [a-z]{0,${MAX_CHAIN + 1}} "\\""`, // past the chain limit
      's ::= "\\"" [a-z]{0,4} "\\"" "x"', // not the whole rule
      'n ::= [1-9] [0-9]{1,2}',
    ])
      expect(rewriteBoundedStrings(same)).toBe(same);
  });
});

/** The demo model's vocabulary as the grammar Worker builds it. */
function demoVocab(): GrammarVocab {
  const dir = defaultModelDir();
  const tok = Tokenizer.fromDir(dir);
  const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as Record<string, unknown>;
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { vocab_size: number };
  return grammarVocab(json, config.vocab_size, (id) => tok.idToToken(id));
}

const SCHEMAS: Record<string, object> = {
  "maxLength": { type: "object", properties: { a: { type: "string", maxLength: 8 } }, required: ["a"] },
  "minLength and maxLength": { type: "object", properties: { a: { type: "string", minLength: 2, maxLength: 5 }, b: { type: "string", maxLength: 3 } }, required: ["a", "b"] },
  "exact length": { type: "object", properties: { code: { type: "string", minLength: 3, maxLength: 3 } }, required: ["code"] },
  "a list of short strings": { type: "object", properties: { items: { type: "array", items: { type: "string", maxLength: 6 }, minItems: 4 } }, required: ["items"] },
  "pattern with a bounded class": { type: "object", properties: { p: { type: "string", pattern: "^[a-z]{2,4}$" }, q: { type: "string", maxLength: 2 } }, required: ["p", "q"] },
  "records of 20 fields": JSON.parse(twentyFieldSchema(3)),
  "a bounded string at the root": { type: "string", minLength: 1, maxLength: 6 },
  "$defs, $ref and free-form values": {
    type: "object",
    $defs: { tag: { type: "string", maxLength: 4 }, node: { type: "object", properties: { name: { $ref: "#/$defs/tag" }, kids: { type: "array", items: { $ref: "#/$defs/tag" }, maxItems: 3 } }, required: ["name", "kids"] } },
    properties: { root: { $ref: "#/$defs/node" }, extra: { type: "object", additionalProperties: { type: "string", maxLength: 3 } } },
    required: ["root", "extra"],
  },
  "anyOf with bounded strings": { type: "object", properties: { v: { anyOf: [{ type: "string", maxLength: 5 }, { type: "integer" }, { type: "null" }] } }, required: ["v"] },
};

async function compilePair(compiler: GrammarCompiler, schema: string): Promise<[CompiledGrammar, CompiledGrammar, boolean]> {
  const original = await compiler.compileJSONSchema(schema, ...JSON_ARGS);
  const ebnf = await Testings._jsonSchemaToEBNF(schema, ...JSON_ARGS);
  const rewritten = rewriteBoundedStrings(ebnf);
  return [original, await compiler.compileGrammar(rewritten, "root"), rewritten !== ebnf];
}

/** Random walks through both grammars; returns the steps compared. Throws on the first difference. */
async function walk(a: CompiledGrammar, b: CompiledGrammar, vocab: GrammarVocab, stopIds: number[], seed: number): Promise<number> {
  let s = seed >>> 0;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const quoteIds = new Set<number>();
  vocab.encoded.forEach((t, id) => t.includes('"') && quoteIds.add(id));
  let steps = 0;
  for (let w = 0; w < 6; w++) {
    const ma = await GrammarMatcher.createGrammarMatcher(a), mb = await GrammarMatcher.createGrammarMatcher(b);
    try {
      for (let step = 0; step < 80; step++) {
        const wa = await ma.getNextTokenBitmask(), wb = await mb.getNextTokenBitmask();
        steps++;
        expect(Array.from(wb)).toEqual(Array.from(wa));
        const allowed: number[] = [];
        for (let i = 0; i < wa.length; i++) for (let bit = 0; bit < 32; bit++) if ((wa[i]! >>> bit) & 1) allowed.push(i * 32 + bit);
        if (allowed.length === 0) break;
        const quoting = allowed.filter((id) => quoteIds.has(id));
        // a third of the steps end a string (or try to); a sixth take the longest token (overrun the bound)
        const r = rnd();
        let id: number;
        if (r < 1 / 3 && quoting.length > 0) id = quoting[Math.floor(rnd() * quoting.length)]!;
        else if (r < 1 / 2) id = allowed.reduce((x, y) => (vocab.encoded[y]!.length > vocab.encoded[x]!.length ? y : x));
        else id = allowed[Math.floor(rnd() * allowed.length)]!;
        if (stopIds.includes(id)) break;
        expect(mb.acceptToken(id)).toBe(ma.acceptToken(id));
      }
    } finally {
      ma.dispose();
      mb.dispose();
    }
  }
  return steps;
}

const VOCABS: [string, () => GrammarVocab & { stopTokenIds?: number[] }][] = [
  ["the demo model's vocabulary", demoVocab],
  ["a synthetic 8K byte-level vocabulary", () => syntheticByteLevelVocab(8000)],
];

for (const [vname, make] of VOCABS) {
  describe(`rewritten grammars equal XGrammar's own, ${vname}`, () => {
    const vocab = make();
    const stopIds = vocab.stopTokenIds ?? [vocab.encoded.length - 1];
    let compiler: GrammarCompiler | null = null;
    const get = async () => {
      if (compiler) return compiler;
      const info = await TokenizerInfo.createTokenizerInfo(vocab.encoded, vocab.vocabType, vocab.prependSpace, vocab.encoded.length, stopIds);
      return (compiler = await GrammarCompiler.createGrammarCompiler(info));
    };
    Object.entries(SCHEMAS).forEach(([name, schema], i) => {
      test(name, async () => {
        const [a, b, changed] = await compilePair(await get(), JSON.stringify(schema));
        try {
          expect(changed).toBe(true);
          const steps = await walk(a, b, vocab, stopIds, 17 + i);
          expect(steps).toBeGreaterThan(10);
        } finally {
          a.dispose();
          b.dispose();
        }
      }, 60_000);
    });
  });
}

test("through GrammarCache (the path of every json constraint): within the bound accepted, past it refused", async () => {
  const vocab = syntheticByteLevelVocab(4000);
  const cache = await GrammarCache.create(vocab, vocab.stopTokenIds);
  try {
    const schema = JSON.stringify(SCHEMAS["a list of short strings"]);
    const g = await cache.get({ type: "json", schema });
    const m = await GrammarMatcher.createGrammarMatcher(g);
    const text = '{"items":["abc","","abcdef","x"]}';
    let ok = true;
    for (const ch of text) ok &&= m._acceptString(ch);
    expect(ok).toBe(true);
    const over = await GrammarMatcher.createGrammarMatcher(g);
    let accepted = true;
    for (const ch of '{"items":["abcdefg"') accepted &&= over._acceptString(ch);
    expect(accepted).toBe(false); // 7 characters: past maxLength 6
    m.dispose();
    over.dispose();
  } finally {
    cache.dispose();
  }
});
