/**
 * The messages between the engine thread (grammarClient.ts) and the grammar Worker
 * (grammarWorker.ts). The Worker owns XGrammar: the compiler, the compiled grammars and one
 * matcher per constrained sample, by id. The engine keeps each sample's accepted ids and sends a
 * matcher only what it missed, when that matcher's next mask is needed (MatcherSync). The Worker
 * handles its messages one at a time, in order, so a mask asked for before a compile never waits
 * for it.
 *
 *   init    {source, stopTokenIds}   -> ready {tokenizerInfoMs, words} | init-error
 *   create  {id, spec, n, onlyCached} -> compiling {id} (as it starts: the compile deadline runs from
 *                                       here), then created {id, matchers[n], hit, compileMs, evicted} | error
 *   masks   {id, syncs: k packed}    -> masks {id, masks: [k * words] uint32 (transferred), refused,
 *                                       ms, syncMs, fillMs, startedAt, endedAt} | error
 *   round   {id, rows, shared, worker} -> round {id, computed, ms, syncMs, fillMs, startedAt, endedAt}
 *                                       (the rows it claimed of a round; masks in shared memory: maskRound.ts)
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

/** The shared memory of a round of masks (layout: maskRound.ts). */
export interface RoundShared {
  numRows: number;
  words: number;
  /** When the engine made the round (epoch ms, epochMs). */
  postedAt: number;
  control: SharedArrayBuffer;
  masks: SharedArrayBuffer;
}

/** TEST ONLY: where a held Worker blocks (debug-hold). */
export type HoldAt = "now" | "compile" | "round";

export type ToGrammarWorker =
  | { type: "init"; source: GrammarSource; stopTokenIds: number[]; cacheSize?: number }
  /** `onlyCached`: make the matchers only if the grammar is compiled here (replicas; none otherwise). */
  | { type: "create"; id: number; spec: StructuredOutput; n: number; onlyCached?: boolean }
  /** Worker `worker`'s share of a round of masks shared by the pool (maskRound.ts). */
  | { type: "round"; id: number; rows: Int32Array; shared: RoundShared; worker: number }
  /** Applies each sync, then computes that matcher's next mask (mask i of the answer). */
  | { type: "masks"; id: number; syncs: Int32Array }
  | { type: "release"; matchers: number[] }
  /**
   * TEST ONLY: the Worker blocks (as in a long compile) while int32 0 of `flag` is 1: at once
   * ("now"), inside its next create after it answered compiling ("compile": a compile that is
   * slow), or in its next round once it claimed a row ("round": stuck with a row half done).
   */
  | { type: "debug-hold"; flag: SharedArrayBuffer; at: HoldAt }
  /** TEST ONLY: the Worker dies of an uncaught error. */
  | { type: "debug-crash" };

/** Where a masks message's time went in the Worker (see FromGrammarWorker "masks"). */
export interface MaskTiming {
  ms: number;
  syncMs: number;
  fillMs: number;
  startedAt: number;
  endedAt: number;
}

/** Epoch ms with sub-ms precision, comparable between the engine thread and the Workers. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

export type FromGrammarWorker =
  | { type: "ready"; tokenizerInfoMs: number; words: number }
  | { type: "init-error"; message: string }
  /** A create starts (a cache hit ends at once): the engine's compile deadline starts now. */
  | { type: "compiling"; id: number }
  /** `evicted`: keys of compiled grammars the cache dropped to make room. */
  | { type: "created"; id: number; matchers: number[]; hit: boolean; compileMs: number; evicted: string[] }
  /**
   * `refused`: indices of syncs with an id the matcher refused (their masks are all zero). The
   * Worker's time: `ms` in all, of which `syncMs` bringing matchers up to date (rollback, accept)
   * and `fillMs` in XGrammar's getNextTokenBitmask; `startedAt` / `endedAt`: when it took the
   * message and when it posted the answer, in epoch ms (performance.timeOrigin + now, comparable
   * across threads), so the engine can tell the hand-off latency from the compute.
   */
  | { type: "masks"; id: number; masks: Uint32Array; refused: number[] } & MaskTiming
  /** A round's share done: rows it computed (the masks and states are in the round's shared memory). */
  | ({ type: "round"; id: number; computed: number } & MaskTiming)
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
