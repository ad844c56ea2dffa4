/**
 * XGrammar's costs at real vocab sizes, on synthetic byte-level vocabs (syntheticVocab.ts): the
 * tokenizer info (once per engine), a 20-field schema's compile cold and cached, and one
 * sequence's mask at three states of that schema. No model is loaded: this is the grammar side
 * only, through GrammarCache in this thread (XGrammar's own cost), then the same through a grammar
 * Worker as the engine runs it (GrammarClient: start-up, compiles and a mask as round trips, and
 * how many times this thread's event loop turned during a cold compile: it is never blocked).
 *
 *   bun run bench -- grammar --vocab 32000,128256 [--mask-reps N]
 * Writes bench/results/grammar-compile-cpu.json.
 */
import { cpus } from "node:os";
import { join } from "node:path";
import { GrammarMatcher } from "@mlc-ai/web-xgrammar";
import { GrammarCache } from "../src/grammar/grammarCache";
import { GrammarClient } from "../src/grammar/grammarClient";
import { greedyTokenize, syntheticByteLevelVocab } from "./syntheticVocab";

/** Mask states of twentyFieldSchema(0): the text accepted before the mask is taken. */
const STATES = {
  /** After `{`: the only thing allowed is the first key (a structural position). */
  structural: "{",
  /** Inside field_0_0's value (string, maxLength 32). */
  string: '{"field_0_0":"hello wor',
  /** At field_0_2's value (integer in [0, 1002]). */
  integer: '{"field_0_0":"ab","field_0_1":"alpha","field_0_2":',
} as const;
type State = keyof typeof STATES;

export interface VocabRow {
  vocab: number;
  buildVocabMs: number;
  tokenizerInfoMs: number;
  compile20FieldMs: number[];
  cachedLookupMs: number;
  /** Median microseconds of one getNextTokenBitmask (the engine's async path). */
  maskUs: Record<State, number>;
  allowedTokens: Record<State, number>;
  rssMb: number;
  rssDeltaMb: number;
  worker?: WorkerRow;
}

/** The same through a grammar Worker (round trips from this thread). */
export interface WorkerRow {
  /** Worker start: the vocab sent over, XGrammar's tokenizer info built there. */
  startMs: number;
  compile20FieldMs: number[];
  cachedLookupMs: number;
  /** Median microseconds for one new state's mask (accept one id, compute), round trip. */
  maskRoundTripUs: number;
  /** This thread's event-loop turns (setImmediate) during the first cold compile. */
  turnsDuringCompile: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rssMb = () => process.memoryUsage().rss / 2 ** 20;

function popcount(words: Int32Array): number {
  let n = 0;
  for (let w of words) for (w >>>= 0; w !== 0; w &= w - 1) n++;
  return n;
}

async function measure(size: number, maskReps: number, schema: (salt: number) => string): Promise<VocabRow> {
  const rss0 = rssMb();
  let t0 = performance.now();
  const vocab = syntheticByteLevelVocab(size);
  const buildVocabMs = performance.now() - t0;
  t0 = performance.now();
  const cache = await GrammarCache.create(vocab, vocab.stopTokenIds);
  const tokenizerInfoMs = performance.now() - t0;
  try {
    const compile20FieldMs: number[] = [];
    for (let k = 0; k < 3; k++) {
      t0 = performance.now();
      await cache.get({ type: "json", schema: schema(k) }); // a new salt: a cold compile
      compile20FieldMs.push(performance.now() - t0);
    }
    t0 = performance.now();
    const compiled = await cache.get({ type: "json", schema: schema(0) });
    const cachedLookupMs = performance.now() - t0;
    const maskUs = {} as Record<State, number>, allowedTokens = {} as Record<State, number>;
    for (const state of Object.keys(STATES) as State[]) {
      const matcher = await GrammarMatcher.createGrammarMatcher(compiled);
      for (const id of greedyTokenize(vocab.encoded, STATES[state]))
        if (!matcher.acceptToken(id)) throw new Error(`the grammar refused ${STATES[state]}`);
      const times: number[] = [];
      let words = await matcher.getNextTokenBitmask();
      for (let i = 0; i < maskReps; i++) {
        t0 = performance.now();
        words = await matcher.getNextTokenBitmask();
        times.push((performance.now() - t0) * 1000);
      }
      maskUs[state] = median(times);
      allowedTokens[state] = popcount(words);
      matcher.dispose();
    }
    const rss = rssMb();
    return { vocab: size, buildVocabMs, tokenizerInfoMs, compile20FieldMs, cachedLookupMs, maskUs, allowedTokens, rssMb: rss, rssDeltaMb: rss - rss0 };
  } finally {
    cache.dispose();
  }
}

async function measureWorker(size: number, maskReps: number, schema: (salt: number) => string): Promise<WorkerRow> {
  const vocab = syntheticByteLevelVocab(size);
  let t0 = performance.now();
  const client = new GrammarClient({ vocab }, vocab.stopTokenIds);
  try {
    await client.ready;
    const startMs = performance.now() - t0;
    const compile20FieldMs: number[] = [];
    let turnsDuringCompile = 0;
    for (let k = 0; k < 3; k++) {
      t0 = performance.now();
      let done = false;
      const created = client.create({ type: "json", schema: schema(k) }, 0, true).finally(() => (done = true));
      if (k === 0) while (!done) await new Promise((r) => setImmediate(r)).then(() => turnsDuringCompile++);
      await created;
      compile20FieldMs.push(performance.now() - t0);
    }
    t0 = performance.now();
    const { matchers } = await client.create({ type: "json", schema: schema(0) }, 1, false);
    const cachedLookupMs = performance.now() - t0;
    const ids = greedyTokenize(vocab.encoded, STATES.string);
    await client.masks([{ matcher: matchers[0]!, rollback: 0, accept: ids }]).reply;
    const times: number[] = [];
    for (let i = 0; i < maskReps; i++) {
      t0 = performance.now();
      await client.masks([{ matcher: matchers[0]!, rollback: 1, accept: ids.slice(-1) }]).reply; // a new state each time, as in decoding
      times.push((performance.now() - t0) * 1000);
    }
    return { startMs, compile20FieldMs, cachedLookupMs, maskRoundTripUs: median(times), turnsDuringCompile };
  } finally {
    client.terminate();
  }
}

export async function vocabCompileBench(sizes: number[], maskReps: number, schema: (salt: number) => string, argv: string[]): Promise<void> {
  // Load the WebAssembly runtime and run one compile first, so the first size does not pay for them.
  const warm = await GrammarCache.create(syntheticByteLevelVocab(512), [511]);
  await warm.get({ type: "json", schema: schema(-1) });
  warm.dispose();
  const rows: VocabRow[] = [];
  for (const size of sizes) rows.push({ ...(await measure(size, maskReps, schema)), worker: await measureWorker(size, maskReps, schema) });
  console.log(`\nXGrammar on synthetic byte-level vocabs, ${cpus().length} cores, mask: median of ${maskReps} calls`);
  console.table(rows.map((r) => ({
    vocab: r.vocab,
    "tokenizer info ms": r.tokenizerInfoMs.toFixed(0),
    "20-field compile ms (cold x3)": r.compile20FieldMs.map((m) => m.toFixed(0)).join(", "),
    "cached ms": r.cachedLookupMs.toFixed(3),
    "mask us structural": r.maskUs.structural.toFixed(0),
    "mask us string": r.maskUs.string.toFixed(0),
    "mask us integer": r.maskUs.integer.toFixed(0),
    "RSS MB (+delta)": `${r.rssMb.toFixed(0)} (+${r.rssDeltaMb.toFixed(0)})`,
  })));
  console.log("\nthe same through a grammar Worker (round trips from this thread, which stays free)");
  console.table(rows.map((r) => ({
    vocab: r.vocab,
    "worker start ms": r.worker!.startMs.toFixed(0),
    "20-field compile ms (cold x3)": r.worker!.compile20FieldMs.map((m) => m.toFixed(0)).join(", "),
    "cached ms": r.worker!.cachedLookupMs.toFixed(3),
    "mask us (new state, round trip)": r.worker!.maskRoundTripUs.toFixed(0),
    "event-loop turns during a compile": r.worker!.turnsDuringCompile,
  })));
  console.table(rows.map((r) => ({ vocab: r.vocab, "allowed: structural": r.allowedTokens.structural, string: r.allowedTokens.string, integer: r.allowedTokens.integer })));
  const out = {
    command: `bun run bench -- grammar ${argv.join(" ")}`.trim(), date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model,
    vocab: "synthetic byte-level BPE (bench/syntheticVocab.ts, seed 1)", states: STATES, maskReps,
    note: "RSS is the process's after each size; WebAssembly memory never shrinks, so a delta is what that size grew it by",
    rows,
  };
  const file = join(import.meta.dir, "results", "grammar-compile-cpu.json");
  await Bun.write(file, JSON.stringify(out, null, 2) + "\n");
  console.log(`wrote ${file}`);
}
