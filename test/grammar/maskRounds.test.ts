// Mask rounds (src/grammar/maskRound.ts, maskAsks.ts): a sample's matcher has replicas in every
// Worker that had its grammar compiled, and a round's rows go to whichever Worker claims them
// first. Masks stay exactly XGrammar's in this thread while rows move between Workers (a Worker
// held for a while, its replicas catching up after; rollbacks), and a Worker that is stuck or
// crashes mid-pass loses no request that has a replica elsewhere: the tokens are those of a run
// where nothing failed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { EngineCore, StepItem } from "../../src/engine/engineCore";
import type { SamplingOptions } from "../../src/engine/samplingOptions";
import type { SequenceGrammar } from "../../src/grammar/sequenceGrammar";
import { GrammarService } from "../../src/grammar/worker/grammarService";
import { defaultModelDir } from "../../src/model/defaultModel";
import { loadDemo } from "./helpers";

/** A JSON list of >= 64 short strings (a constrained sequence that runs to max_tokens). */
const LONG = { type: "json" as const, schema: JSON.stringify({ type: "object", properties: { items: { type: "array", items: { type: "string", maxLength: 8 }, minItems: 64 } }, required: ["items"] }) };
const bound = (seed: number): SamplingOptions => ({ maxTokens: 60, temperature: 1, seed, ignoreEos: true, structured: LONG });


/** A seeded uniform [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function allowedIds(mask: Uint32Array): number[] {
  const out: number[] = [];
  for (let w = 0; w < mask.length; w++) for (let b = 0; b < 32; b++) if ((mask[w]! >>> b) & 1) out.push(w * 32 + b);
  return out;
}

let core: EngineCore;
let here: GrammarService;
beforeAll(async () => {
  core = await loadDemo({ grammarWorkers: 3 });
  here = await GrammarService.create({ modelDir: defaultModelDir(), vocabSize: 2048 }, [...core.tokenizer.eosTokenIds]);
});
afterAll(() => {
  here.dispose();
  core.destroy();
});

describe("mask rounds", () => {
  test("rows move between Workers (one held, then catching up; rollbacks): every mask is XGrammar's in this thread", async () => {
    const g = core.grammars;
    const first = await g.forRequest(LONG, 3); // compiles in each Worker
    const gs = [...first, ...(await g.forRequest(LONG, 6))];
    await g.replicasSettled(); // they come in the background
    expect(gs.map((s) => s.workers.length)).toEqual(gs.map(() => 3));
    const { matchers } = await here.create(LONG, 1);
    const reference = async (state: readonly number[]) => {
      const { masks, refused } = await here.masks([{ matcher: matchers[0]!, rollback: 0, accept: [...state] }]);
      await here.masks([{ matcher: matchers[0]!, rollback: state.length, accept: [] }]);
      expect(refused).toEqual([]);
      return masks;
    };
    const rand = rng(5);
    let release: (() => void) | null = null;
    for (let p = 0; p < 48; p++) {
      if (p === 8) release = g.debugHoldWorker(0); // Workers 1 and 2 take its rows
      if (p === 20) release!(); // Worker 0's replicas are up to 12 ids behind: it catches up when it takes rows
      if (p === 30) for (const s of gs.slice(0, 4)) s.rollback(3);
      await g.masksFor(gs);
      expect(g.takeFailures()).toBe(false);
      for (const s of gs) {
        expect(s.nextMask).toEqual(await reference(s.acceptedIds));
        const ids = allowedIds(s.nextMask!);
        expect(s.accept(ids[Math.floor(rand() * ids.length)]!)).toBe(true);
      }
    }
    for (const s of gs) g.release(s);
  });
});

/** One pass as the engine host runs it: launch, await the masks, finish. */
async function pass(e: EngineCore): Promise<StepItem[]> {
  e.launchStep();
  const masks = e.prepareMasks();
  if (masks) await masks;
  return e.finishStep();
}

/** Runs `n` bound requests to the end, calling `meddle(e, passIndex)` before each pass; tokens by id. */
async function runBound(e: EngineCore, n: number, meddle: (p: number) => void = () => {}): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    out.set(`b${i}`, []);
    await e.addRequestAsync(`b${i}`, e.tokenizer.encode(`Items ${i}:`), bound(40 + i));
  }
  await e.grammars.replicasSettled(); // each sample has a replica in both Workers (the grammar is compiled in each)
  for (let p = 0; e.hasWork(); p++) {
    meddle(p);
    for (const it of await pass(e)) {
      if (it.error) throw it.error;
      for (const d of it.deltas) out.get(it.id)!.push(...d.tokenIds);
    }
  }
  return out;
}

describe("a Worker lost mid-pass", () => {
  let expected: Map<string, number[]>;
  beforeAll(async () => {
    const e = await loadDemo({ grammarWorkers: 2 });
    try {
      await e.grammars.forRequest(LONG, 2); // compiled in both Workers: every request gets a replica in each
      expected = await runBound(e, 4);
    } finally {
      e.destroy();
    }
  });

  test("stuck with a row half done, ended at the mask timeout: its rows go to the other Worker, the tokens are unchanged", async () => {
    const e = await loadDemo({ grammarWorkers: 2 });
    try {
      e.grammars.maskTimeoutMs = 300;
      await e.grammars.forRequest(LONG, 2);
      let release: (() => void) | null = null;
      const got = await runBound(e, 4, (p) => {
        if (p === 12) release = e.grammars.debugHoldWorker(0, "round");
      });
      release!();
      expect(got).toEqual(expected);
      await e.grammars.forRequest(LONG, 1); // Worker 0 was ended: this starts its replacement
      expect(e.grammars.stats).toMatchObject({ workers: 3, restarts: 1 });
      expect(e.metrics().kvBlocksFree).toBe(e.metrics().kvBlocksTotal);
    } finally {
      e.destroy();
    }
  });

  test.each([false, true])("crashed (early masks %p): its samples go on in their replicas with the same tokens", async (early) => {
    const e = await loadDemo({ grammarWorkers: 2, grammarEarlyMasks: early });
    try {
      await e.grammars.forRequest(LONG, 2);
      const got = await runBound(e, 4, (p) => {
        if (p === 10) e.grammars.debugCrashWorker(1);
      });
      expect(got).toEqual(expected);
      await e.grammars.forRequest(LONG, 1); // Worker 1 died: this starts its replacement
      expect(e.grammars.stats).toMatchObject({ workers: 3, restarts: 1 });
      expect(e.metrics().kvBlocksFree).toBe(e.metrics().kvBlocksTotal);
    } finally {
      e.destroy();
    }
  });
});
