/**
 * The messages between the engine thread (grammarClient.ts) and the grammar Worker
 * (grammarWorker.ts). The Worker owns XGrammar: the compiler, the compiled grammars and one
 * matcher per constrained sample, by id. The engine keeps each sample's accepted ids and sends a
 * matcher only what it missed, when that matcher's next mask is needed (MatcherSync). The Worker
 * handles its messages one at a time, in order, so a mask asked for before a compile never waits
 * for it.
 *
 *   init    {source, stopTokenIds}   -> ready {tokenizerInfoMs, words} | init-error
 *   create  {id, spec, n}            -> compiling {id} (as it starts: the compile deadline runs from
 *                                       here), then created {id, matchers[n], hit, compileMs, evicted} | error
 *   masks   {id, syncs: k packed}    -> masks {id, masks: [k * words] uint32 (transferred), refused} | error
 *   release {matchers}               (no answer)
 */
import type { StructuredOutput } from "../spec";
import type { GrammarVocab } from "../vocab";

/** Where the Worker builds its vocabulary: the model's tokenizer, or a given one (benches, tests). */
export type GrammarSource = { modelDir: string; vocabSize: number } | { vocab: GrammarVocab };

/** Brings matcher `matcher` to the engine's state: undo `rollback` ids, then accept `accept`. */
export interface MatcherSync {
  matcher: number;
  rollback: number;
  accept: number[];
}

export type ToGrammarWorker =
  | { type: "init"; source: GrammarSource; stopTokenIds: number[]; cacheSize?: number }
  | { type: "create"; id: number; spec: StructuredOutput; n: number }
  /** Applies each sync, then computes that matcher's next mask (mask i of the answer). */
  | { type: "masks"; id: number; syncs: Int32Array }
  | { type: "release"; matchers: number[] }
  /**
   * TEST ONLY: the Worker blocks (as in a long compile) while int32 0 of `flag` is 1: at once, or
   * with `inCompile` inside its next create, after it answered compiling (a compile that is slow).
   */
  | { type: "debug-hold"; flag: SharedArrayBuffer; inCompile?: boolean }
  /** TEST ONLY: the Worker dies of an uncaught error. */
  | { type: "debug-crash" };

export type FromGrammarWorker =
  | { type: "ready"; tokenizerInfoMs: number; words: number }
  | { type: "init-error"; message: string }
  /** A create starts (a cache hit ends at once): the engine's compile deadline starts now. */
  | { type: "compiling"; id: number }
  /** `evicted`: keys of compiled grammars the cache dropped to make room. */
  | { type: "created"; id: number; matchers: number[]; hit: boolean; compileMs: number; evicted: string[] }
  /** `refused`: indices of syncs with an id the matcher refused (their masks are all zero). */
  | { type: "masks"; id: number; masks: Uint32Array; refused: number[]; ms: number }
  /** `name` "GrammarError": the constraint does not compile (the request's fault). */
  | { type: "error"; id: number; name: string; message: string };

/**
 * Syncs packed for the message (a typed array is copied in microseconds; 64 objects took ~20 us):
 *   [matcher, rollback, n, id_0 .. id_n-1] per sync, back to back
 */
export function packSyncs(syncs: readonly MatcherSync[]): Int32Array {
  let len = 0;
  for (const s of syncs) len += 3 + s.accept.length;
  const out = new Int32Array(len);
  let at = 0;
  for (const s of syncs) {
    out[at++] = s.matcher;
    out[at++] = s.rollback;
    out[at++] = s.accept.length;
    out.set(s.accept, at);
    at += s.accept.length;
  }
  return out;
}

export function unpackSyncs(packed: Int32Array): MatcherSync[] {
  const out: MatcherSync[] = [];
  for (let at = 0; at < packed.length; ) {
    const matcher = packed[at++]!, rollback = packed[at++]!, n = packed[at++]!;
    out.push({ matcher, rollback, accept: Array.from(packed.subarray(at, (at += n))) });
  }
  return out;
}
