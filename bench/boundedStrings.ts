/**
 * Length-bounded JSON strings (src/grammar/boundedStrings.ts): XGrammar's own compile of a schema
 * against the rewritten grammar, on a synthetic byte-level vocab, in this thread.
 *   1. the bench's records schema (bench/grammarOverhead.ts --schema records): compile ms, and the
 *      mask ms of both over the same random walks (p50 / p99 / max, whether every mask matched);
 *   2. one string of maxLength 32 / 256 / 1024 at the root: compile ms of both (the chain forced
 *      at 1024, past MAX_CHAIN, to show why the rewrite stops there).
 *
 *   bun run bench -- bounded [--vocab 32000] [--walks 12] [--steps 70]
 * Writes bench/results/grammar-bounded-cpu.json.
 */
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type CompiledGrammar, GrammarCompiler, GrammarMatcher, Testings, TokenizerInfo } from "@mlc-ai/web-xgrammar";
import { MAX_CHAIN, rewriteBoundedStrings } from "../src/grammar/boundedStrings";
import { recordsSchema } from "./grammarOverhead";
import { syntheticByteLevelVocab } from "./syntheticVocab";

const JSON_ARGS = [false, -1, [",", ":"] as [string, string], true] as const;

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: s[s.length >> 1]!, p99: s[Math.floor(s.length * 0.99)]!, max: s.at(-1)!, sum: s.reduce((a, b) => a + b, 0) };
};

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  return [v, performance.now() - t0];
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { vocab: { type: "string" }, walks: { type: "string" }, steps: { type: "string" } } });
  const size = Number(values.vocab ?? 32000), walks = Number(values.walks ?? 12), steps = Number(values.steps ?? 70);
  const vocab = syntheticByteLevelVocab(size);
  const info = await TokenizerInfo.createTokenizerInfo(vocab.encoded, vocab.vocabType, vocab.prependSpace, size, vocab.stopTokenIds);
  const compiler = await GrammarCompiler.createGrammarCompiler(info, false); // no compile cache: every compile is cold
  const both = async (schema: string, maxChain = MAX_CHAIN): Promise<{ own: CompiledGrammar; ownMs: number; chain: CompiledGrammar; chainMs: number }> => {
    const [own, ownMs] = await timed(() => compiler.compileJSONSchema(schema, ...JSON_ARGS));
    const ebnf = rewriteBoundedStrings(await Testings._jsonSchemaToEBNF(schema, ...JSON_ARGS), maxChain);
    const [chain, chainMs] = await timed(() => compiler.compileGrammar(ebnf, "root"));
    return { own, ownMs, chain, chainMs };
  };

  // 1. the records schema, the same walks through both
  const rec = await both(recordsSchema());
  const ownMs: number[] = [], chainMs: number[] = [];
  let mismatches = 0, seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let w = 0; w < walks; w++) {
    const a = await GrammarMatcher.createGrammarMatcher(rec.own), b = await GrammarMatcher.createGrammarMatcher(rec.chain);
    for (let s = 0; s < steps; s++) {
      const [wa, ta] = await timed(() => a.getNextTokenBitmask());
      const [wb, tb] = await timed(() => b.getNextTokenBitmask());
      ownMs.push(ta), chainMs.push(tb);
      if (wa.length !== wb.length || wa.some((v, i) => v !== wb[i])) mismatches++;
      const allowed: number[] = [];
      for (let i = 0; i < wa.length; i++) for (let bit = 0; bit < 32; bit++) if ((wa[i]! >>> bit) & 1) allowed.push(i * 32 + bit);
      const id = allowed[Math.floor(rnd() * allowed.length)];
      if (id === undefined || vocab.stopTokenIds.includes(id)) break;
      a.acceptToken(id), b.acceptToken(id);
    }
    a.dispose(), b.dispose();
  }
  const own = stats(ownMs), chain = stats(chainMs);
  console.log(`\nrecords schema, ${size} vocab, ${ownMs.length} masks over ${walks} random walks (${cpus().length} cores, this thread)`);
  console.table([
    { grammar: "XGrammar's own", "compile ms": rec.ownMs.toFixed(0), "mask ms p50": own.p50.toFixed(3), p99: own.p99.toFixed(2), max: own.max.toFixed(2), "sum ms": own.sum.toFixed(0) },
    { grammar: "bounded strings rewritten", "compile ms": rec.chainMs.toFixed(0), "mask ms p50": chain.p50.toFixed(3), p99: chain.p99.toFixed(2), max: chain.max.toFixed(2), "sum ms": chain.sum.toFixed(0) },
  ]);
  console.log(`masks that differed: ${mismatches}`);
  rec.own.dispose(), rec.chain.dispose();

  // 2. one bounded string: compile time against the bound
  const bounds: { maxLength: number; ownMs: number; chainMs: number }[] = [];
  for (const n of [32, 256, 1024]) {
    const g = await both(JSON.stringify({ type: "string", maxLength: n }), Math.max(MAX_CHAIN, n));
    bounds.push({ maxLength: n, ownMs: g.ownMs, chainMs: g.chainMs });
    g.own.dispose(), g.chain.dispose();
  }
  console.log(`\none string of maxLength n at the root: compile ms (the chain is used up to n = ${MAX_CHAIN})`);
  console.table(bounds.map((b) => ({ maxLength: b.maxLength, "XGrammar's own ms": b.ownMs.toFixed(0), "chain ms": b.chainMs.toFixed(0) })));
  compiler.dispose();
  const file = join(import.meta.dir, "results", "grammar-bounded-cpu.json");
  await Bun.write(file, JSON.stringify({
    command: `bun run bench -- bounded ${argv.join(" ")}`.trim(), date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model,
    vocab: `synthetic byte-level BPE, ${size} (bench/syntheticVocab.ts, seed 1)`, walks, steps,
    records: { ownCompileMs: rec.ownMs, chainCompileMs: rec.chainMs, ownMaskMs: own, chainMaskMs: chain, masks: ownMs.length, mismatches },
    bounds,
  }, null, 2) + "\n");
  console.log(`wrote ${file}`);
}
