/**
 * Length-bounded JSON strings (`maxLength`, `minLength`) in a form whose masks XGrammar computes
 * from its precomputed per-rule token tables instead of token by token at run time.
 *
 * XGrammar turns a schema's `{"type": "string", "maxLength": 32}` into
 *     string ::= "\"" [^"\\\r\n]{0,32} "\""
 * and expands the repetition into nested rules that stop short of the closing quote. Inside the
 * string every token long enough to reach the quote, or past the bound, leaves those rules, so
 * its acceptance depends on the rules around it and the matcher checks it at run time: on a 32K
 * vocab 12-29K tokens a mask, up to 6 ms each in WebAssembly (bench/results/device-wave14-h100.md,
 * the batch-64 grammar overhead's whole tail). Rewritten as a chain whose rules take the closing
 * quote themselves,
 *     string ::= "\"" string__q0
 *     string__qK ::= "\"" | [^"\\\r\n] string__q(K+1)        (K >= min; below min no quote)
 *     string__q32 ::= "\""
 * the same strings are accepted (q0 derives CLASS^j "\"" for min <= j <= max: the same language,
 * whatever the class), and a token that ends the string, or overruns the bound, is decided inside
 * the chain, where XGrammar's compile-time tables already hold the answer. Only tokens that go on
 * past the closing quote are still checked at run time. Measured: identical masks over every
 * step of random walks through the schemas of test/grammar/boundedStrings.test.ts, and on the
 * bench's records schema (32K vocab) masks of at most 0.06-0.2 ms against 6-7 ms, compiles faster
 * (`bun run bench -- bounded`, bench/boundedStrings.ts).
 *
 * Only whole rules of exactly that shape are rewritten (XGrammar's JSON-schema output); bounds
 * above MAX_CHAIN keep XGrammar's own form (a longer chain costs more to compile than it saves).
 */

/**
 * The longest bound rewritten. The chain compiled as fast as XGrammar's form up to 256 (2.3 vs
 * 2.4 s at 256, 0.23 vs 0.41 s at 32, 32K vocab); at 1024 it took 9.0 s against 2.4
 * (`bun run bench -- bounded`).
 */
export const MAX_CHAIN = 256;

// NAME ::= "\"" [CLASS]{m,n} "\""  (also {n}); CLASS may hold escapes (\\ \" \r ...).
const BOUNDED = /^([A-Za-z_][A-Za-z0-9_]*) ::= "\\"" (\[(?:[^\]\\]|\\.)*\])\{(\d+)(?:,(\d+))?\} "\\""$/;

/** The EBNF with its bounded-string rules rewritten; the same text when there are none. */
export function rewriteBoundedStrings(ebnf: string, maxChain = MAX_CHAIN): string {
  const lines = ebnf.split("\n");
  const names = new Set(lines.map((l) => /^([A-Za-z_][A-Za-z0-9_]*) ::=/.exec(l)?.[1]).filter((n): n is string => n !== undefined));
  let changed = false;
  const out: string[] = [];
  for (const line of lines) {
    const m = BOUNDED.exec(line);
    const min = m ? Number(m[3]) : 0, max = m ? Number(m[4] ?? m[3]) : 0;
    if (!m || max > maxChain || min > max) {
      out.push(line);
      continue;
    }
    const [, name, cls] = m;
    let stem = `${name}__q`;
    while ([...names].some((n) => n.startsWith(stem))) stem = `${stem}q`;
    changed = true;
    out.push(`${name} ::= "\\"" ${stem}0`);
    for (let k = 0; k < max; k++) out.push(`${stem}${k} ::= ${k >= min ? `"\\"" | ` : ""}${cls} ${stem}${k + 1}`);
    out.push(`${stem}${max} ::= "\\""`);
  }
  return changed ? out.join("\n") : ebnf;
}
