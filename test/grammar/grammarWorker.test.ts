// The grammar Worker (src/grammar/worker/): XGrammar's compiles and masks run off the engine
// thread. Proved by behaviour, never by wall time: other sequences decode while a schema compiles
// (a real compile, and one held in the Worker on purpose), the constrained ones that sat it out
// resume with the tokens they would have had; a stuck Worker fails its requests after the mask
// timeout, a crashed one at once, and the next request starts a new Worker; an engine that never
// sees a constraint starts none, and an idle Worker keeps no process alive. With a pool of K
// Workers (grammarPool.ts): samples spread over them, their masks equal XGrammar's in this thread,
// the tokens equal one Worker's, a compile in one Worker holds only that Worker's samples, and a
// crash fails only its samples. The other tests run one Worker (helpers.ts loadDemo), as before.
// A compile past --grammar-compile-timeout (one held in the Worker's compile on purpose) fails
// the requests waiting on it with a 400 naming the limit, and its Worker like a crash; the grammar
// counters reach EngineMetrics and /metrics.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { syntheticByteLevelVocab } from "../../bench/syntheticVocab";
import type { EngineCore, StepItem } from "../../src/engine/engineCore";
import type { SamplingOptions } from "../../src/engine/samplingOptions";
import { EngineStepError, RequestRejectedError } from "../../src/engine/types";
import { GrammarClient } from "../../src/grammar/grammarClient";
import { defaultGrammarWorkers } from "../../src/grammar/grammarPool";
import { GrammarService } from "../../src/grammar/worker/grammarService";
import { defaultModelDir } from "../../src/model/defaultModel";
import { ENGINE_FLAG_HELP, UsageError, engineOptionsFromFlags } from "../../src/ops/engineFlags";
import { engineArgs } from "../../src/lb/frontEnd";
import { ServerMetrics } from "../../src/server/metrics";
import { PERSON_SCHEMA, loadDemo, runAll, schemaErrors } from "./helpers";

/** A schema of 20 fields of every kind; a new salt is a new key (a cold compile, ~0.25 s on the demo vocab). */
function twentyFields(salt: string): string {
  const kinds = [
    { type: "string", maxLength: 16 },
    { type: "string", enum: ["alpha", "beta", `v${salt}`] },
    { type: "integer", minimum: 0, maximum: 1000 },
    { type: "number" },
    { type: "boolean" },
    { type: "array", items: { type: "integer" }, maxItems: 3 },
    { type: "object", properties: { x: { type: "string" }, y: { type: "integer" } }, required: ["x", "y"] },
  ];
  const props = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f_${salt}_${i}`, kinds[i % 7]]));
  return JSON.stringify({ type: "object", properties: props, required: Object.keys(props), additionalProperties: false });
}

/**
 * A JSON list of >= 64 short strings: a constrained sequence that runs to max_tokens. Its first
 * 32 states' masks are in the engine's mask cache after the reference run (maskCache.ts), so the
 * tests let it pass those (PAST_CACHE passes) before the Worker is made busy.
 */
const LONG = { type: "json" as const, schema: JSON.stringify({ type: "object", properties: { items: { type: "array", items: { type: "string", maxLength: 8 }, minItems: 64 } }, required: ["items"] }) };
const FREE: SamplingOptions = { maxTokens: 120, temperature: 1, seed: 21, ignoreEos: true };
const BOUND: SamplingOptions = { maxTokens: 100, temperature: 1, seed: 22, ignoreEos: true, structured: LONG };
const PAST_CACHE = 34;

/** One pass as the engine host runs it: launch, await the masks, finish. */
async function pass(core: EngineCore): Promise<StepItem[]> {
  core.launchStep();
  const masks = core.prepareMasks();
  if (masks) await masks;
  return core.finishStep();
}

/** Drives passes, gathering each request's token ids (sample 0) and errors. */
class Driver {
  readonly ids = new Map<string, number[]>();
  readonly errors = new Map<string, Error>();
  constructor(private readonly core: EngineCore) {}
  async add(id: string, prompt: string, sampling: SamplingOptions): Promise<void> {
    this.ids.set(id, []);
    await this.core.addRequestAsync(id, this.core.tokenizer.encode(prompt), sampling);
  }
  async step(): Promise<void> {
    for (const it of await pass(this.core)) {
      if (it.error) this.errors.set(it.id, it.error);
      for (const d of it.deltas) if (d.index === 0) this.ids.get(it.id)!.push(...d.tokenIds);
    }
  }
  count(id: string): number {
    return this.ids.get(id)!.length;
  }
  async finish(): Promise<void> {
    while (this.core.hasWork()) await this.step();
  }
}

let core: EngineCore;
/** The tokens of FREE and BOUND run alone: what they must give whatever compiles meanwhile. */
let alone: { free: number[]; bound: number[] };
beforeAll(async () => {
  core = await loadDemo({ maxSeqs: 16 });
  const [free, bound] = await runAll(core, [{ prompt: "Free text:", sampling: FREE }, { prompt: "Items:", sampling: BOUND }]);
  alone = { free: free!.tokenIds[0]!, bound: bound!.tokenIds[0]! };
});
afterAll(() => core.destroy());

describe("compiles off the engine thread", () => {
  test("other sequences decode while a new schema compiles; the constrained one resumes unchanged", async () => {
    const d = new Driver(core);
    await d.add("free", "Free text:", FREE);
    await d.add("bound", "Items:", BOUND);
    for (let i = 0; i < PAST_CACHE; i++) await d.step();
    let compiled = false;
    const compiling = d.add("new", "Person:", { maxTokens: 40, temperature: 1, seed: 3, structured: { type: "json", schema: twentyFields(`real${Date.now()}`) } }).then(() => (compiled = true));
    const [free, bound] = [d.count("free"), d.count("bound")];
    while (!compiled && core.hasWork()) await d.step(); // the compile runs in the Worker meanwhile
    await compiling;
    expect(d.count("free")).toBeGreaterThan(free);
    // At most the mask asked for before the compile, and one pass after its answer.
    expect(d.count("bound")).toBeLessThanOrEqual(bound + 2);
    await d.finish();
    expect(d.errors.size).toBe(0);
    expect(d.ids.get("free")).toEqual(alone.free);
    expect(d.ids.get("bound")).toEqual(alone.bound);
  });

  test("while the Worker is held in a compile, constrained sequences sit out and the others decode", async () => {
    const d = new Driver(core);
    await d.add("free", "Free text:", FREE);
    await d.add("bound", "Items:", BOUND);
    for (let i = 0; i < PAST_CACHE; i++) await d.step();
    const release = core.grammars.debugHoldWorker(); // from here the Worker is busy, as in a compile
    const compiling = d.add("new", "Person:", { maxTokens: 40, temperature: 1, seed: 4, structured: { type: "json", schema: twentyFields(`held${Date.now()}`) } });
    await d.step(); // may still use the mask asked for before the hold
    const [free, bound] = [d.count("free"), d.count("bound")];
    for (let i = 0; i < 8; i++) await d.step();
    expect(d.count("free")).toBe(free + 8);
    expect(d.count("bound")).toBe(bound);
    release();
    await compiling;
    await d.finish();
    expect(d.errors.size).toBe(0);
    expect(d.ids.get("free")).toEqual(alone.free);
    expect(d.ids.get("bound")).toEqual(alone.bound);
    expect(d.count("new")).toBeGreaterThan(0);
  });

  test("when every sequence waits for a compile, the loop waits for the Worker instead of spinning", async () => {
    const d = new Driver(core);
    await d.add("bound", "Items:", { ...BOUND, maxTokens: 60 });
    for (let i = 0; i < PAST_CACHE; i++) await d.step();
    const release = core.grammars.debugHoldWorker();
    const compiling = d.add("new", "Person:", { maxTokens: 20, temperature: 1, seed: 5, structured: { type: "json", schema: twentyFields(`idle${Date.now()}`) } });
    const steps = core.timing.steps;
    let stopped = false;
    const loop = (async () => {
      while (!stopped && core.hasWork()) await d.step();
    })();
    await Bun.sleep(100); // time for a spinning loop to run many passes; a waiting one runs one
    expect(core.timing.steps - steps).toBeLessThanOrEqual(1);
    release();
    await compiling;
    stopped = true;
    await loop;
    await d.finish();
    expect(d.errors.size).toBe(0);
    expect(d.count("bound")).toBe(60);
  });

  test("a 128K-vocab compile leaves this thread free (the event loop turns throughout)", async () => {
    const vocab = syntheticByteLevelVocab(128256);
    const client = new GrammarClient({ vocab }, vocab.stopTokenIds);
    try {
      await client.ready;
      let turns = 0;
      let done = false;
      const compile = client.create({ type: "json", schema: twentyFields("big") }, 1, true).then((c) => ((done = true), c));
      while (!done) {
        await new Promise((r) => setImmediate(r));
        turns++;
      }
      const created = await compile;
      expect(created.hit).toBe(false);
      expect(created.compileMs).toBeGreaterThan(0);
      expect(turns).toBeGreaterThan(10); // a compile on this thread would allow exactly one
    } finally {
      client.terminate();
    }
  }, 60_000);
});

describe("Worker failures", () => {
  test("a Worker that computes no masks in time fails its requests; the others go on; the next request starts a new Worker", async () => {
    const e = await loadDemo({ maxSeqs: 16 });
    try {
      e.grammars.maskTimeoutMs = 300;
      const d = new Driver(e);
      await d.add("free", "Free text:", FREE);
      await d.add("bound", "Items:", { ...BOUND, seed: 24 }); // states not in this engine's mask cache
      await d.step();
      const release = e.grammars.debugHoldWorker(); // stuck, with no compile the engine knows of
      for (let i = 0; i < 5 && !d.errors.has("bound"); i++) await d.step();
      release();
      const err = d.errors.get("bound");
      expect(err).toBeInstanceOf(EngineStepError);
      expect(err!.message).toContain("computed no masks in 300 ms");
      await d.add("again", "Person:", { maxTokens: 150, temperature: 1, seed: 6, structured: { type: "json", schema: JSON.stringify(PERSON_SCHEMA) } });
      await d.finish();
      expect(d.ids.get("free")).toEqual(alone.free);
      expect(e.grammars.stats.workers).toBe(2);
      const text = e.tokenizer.decode(d.ids.get("again")!, { skipSpecialTokens: true });
      expect(schemaErrors(JSON.parse(text), PERSON_SCHEMA)).toEqual([]);
    } finally {
      e.destroy();
    }
  });

  test("a Worker that crashes fails the constrained requests in flight; the next request starts a new one", async () => {
    const e = await loadDemo({ maxSeqs: 16 });
    try {
      const d = new Driver(e);
      await d.add("free", "Free text:", FREE);
      await d.add("bound", "Items:", BOUND);
      await d.add("bound2", "More items:", { ...BOUND, seed: 23 });
      await d.step();
      e.grammars.debugCrashWorker();
      for (let i = 0; i < 50 && !d.errors.has("bound2"); i++) await d.step();
      for (const id of ["bound", "bound2"]) {
        expect(d.errors.get(id)).toBeInstanceOf(EngineStepError);
        expect(d.errors.get(id)!.message).toContain("grammar worker crashed");
      }
      await d.add("again", "Items:", BOUND);
      await d.finish();
      expect(d.ids.get("again")).toEqual(alone.bound);
      expect(d.ids.get("free")).toEqual(alone.free);
      expect(e.grammars.stats.workers).toBe(2);
      expect(e.metrics().kvBlocksFree).toBe(e.metrics().kvBlocksTotal);
    } finally {
      e.destroy();
    }
  });
});

describe("compile deadline (--grammar-compile-timeout)", () => {
  test("the flag sets it (seconds, > 0, default 30) and travels to replicas", () => {
    expect(engineOptionsFromFlags({ "grammar-compile-timeout": "2.5" })).toEqual({ grammarCompileTimeout: 2.5 });
    expect(() => engineOptionsFromFlags({ "grammar-compile-timeout": "0" })).toThrow(UsageError);
    expect(engineArgs({ grammarCompileTimeout: 5 })).toEqual(["--grammar-compile-timeout", "5"]);
    expect(ENGINE_FLAG_HELP).toContain("--grammar-compile-timeout S");
    expect(ENGINE_FLAG_HELP).toContain("(default 30)");
  });

  test("a compile past it fails the requests waiting on it (400, naming the limit) and its Worker's samples; others decode on; a schema queued behind it and the next request run on a new Worker", async () => {
    // 1.5 s: the held compile fails by it whatever it is; the schema queued behind it then starts a
    // new Worker and compiles within the same limit, which 0.3 s missed on a loaded 2-core machine.
    const e = await loadDemo({ maxSeqs: 16, grammarCompileTimeout: 1.5 });
    try {
      const d = new Driver(e);
      await d.add("free", "Free text:", FREE);
      await d.add("bound", "Items:", BOUND); // a live sample of the Worker that will be ended
      await d.step();
      const release = e.grammars.debugHoldWorker(0, true); // its next compile is slow
      const slow = { maxTokens: 40, temperature: 1, seed: 8, structured: { type: "json" as const, schema: twentyFields(`slow${Date.now()}`) } };
      const settle = (p: Promise<void>) => p.then(() => null, (err: Error) => err);
      const waiting = [settle(d.add("slow", "Person:", slow)), settle(d.add("slow2", "Person:", { ...slow, seed: 9 }))];
      // Another schema, queued behind the slow compile: not its fault, so it is tried again on the
      // Worker that replaces the ended one, and runs.
      const behind = settle(d.add("behind", "Person:", { maxTokens: 150, temperature: 1, seed: 6, structured: { type: "json", schema: JSON.stringify(PERSON_SCHEMA) } }));
      let settled = false;
      void Promise.all([...waiting, behind]).then(() => (settled = true));
      const free = d.count("free");
      while (!settled) {
        if (e.hasWork()) await d.step();
        else await Bun.sleep(10);
      }
      release();
      expect(d.count("free")).toBeGreaterThan(free); // decoded while the compile ran
      for (const err of await Promise.all(waiting)) {
        expect(err).toBeInstanceOf(RequestRejectedError);
        expect(err!.message).toContain("did not compile within 1.5 s");
        expect(err!.message).toContain("--grammar-compile-timeout");
      }
      expect(await behind).toBeNull();
      for (let i = 0; i < 5 && !d.errors.has("bound"); i++) await d.step();
      expect(d.errors.get("bound")).toBeInstanceOf(EngineStepError);
      expect(d.errors.get("bound")!.message).toContain("compile ran past 1.5 s");
      await d.add("again", "Person:", { maxTokens: 150, temperature: 1, seed: 6, structured: { type: "json", schema: JSON.stringify(PERSON_SCHEMA) } });
      await d.finish();
      expect(d.ids.get("free")).toEqual(alone.free);
      for (const id of ["behind", "again"]) {
        const text = e.tokenizer.decode(d.ids.get(id)!, { skipSpecialTokens: true });
        expect(schemaErrors(JSON.parse(text), PERSON_SCHEMA)).toEqual([]);
      }
      expect(e.metrics().grammar).toMatchObject({ compileTimeouts: 1, workerRestarts: 1 });
      expect(e.metrics().kvBlocksFree).toBe(e.metrics().kvBlocksTotal);
    } finally {
      e.destroy();
    }
  });
});

describe("grammar metrics", () => {
  test("compiles, cache hits, masks and mask waits reach EngineMetrics and /metrics", async () => {
    const e = await loadDemo();
    try {
      const zero = e.metrics().grammar!;
      expect(zero).toEqual({ compiles: 0, compileSeconds: 0, cacheHits: 0, compileTimeouts: 0, masksComputed: 0, maskWaitSeconds: 0, workerRestarts: 0 });
      const person = { maxTokens: 30, temperature: 1, seed: 11, structured: { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) } };
      await runAll(e, [{ prompt: "Person:", sampling: person }]);
      await runAll(e, [{ prompt: "Person:", sampling: { ...person, seed: 12 } }]);
      const g = e.metrics().grammar!;
      expect(g).toMatchObject({ compiles: 1, cacheHits: 1, compileTimeouts: 0, workerRestarts: 0 });
      expect(g.compileSeconds).toBeGreaterThan(0);
      expect(g.masksComputed).toBeGreaterThan(0);
      expect(g.maskWaitSeconds).toBeGreaterThanOrEqual(0);
      const text = new ServerMetrics().render("m", e.metrics());
      expect(text).toContain('fastgen:grammar_compiles_total{model_name="m"} 1');
      expect(text).toContain('fastgen:grammar_cache_hits_total{model_name="m"} 1');
      expect(text).toContain(`fastgen:grammar_masks_computed_total{model_name="m"} ${g.masksComputed}`);
      for (const name of ["compile_seconds_total", "compile_timeouts_total", "mask_wait_seconds_total", "worker_restarts_total"])
        expect(text).toContain(`# TYPE fastgen:grammar_${name} counter`);
    } finally {
      e.destroy();
    }
  });
});

describe("Worker lifecycle", () => {
  test("an engine that never sees a constraint starts no Worker", async () => {
    const e = await loadDemo();
    try {
      await runAll(e, [{ prompt: "Hello", sampling: { maxTokens: 8, temperature: 1, seed: 1 } }]);
      expect(e.grammars.started).toBe(false);
    } finally {
      e.destroy();
    }
  });

  test("an idle Worker keeps no process alive, destroyed or not", () => {
    for (const destroy of [false, true]) {
      const script = `
        import { loadDemo, runAll } from ${JSON.stringify(join(import.meta.dir, "helpers.ts"))};
        const core = await loadDemo();
        const [r] = await runAll(core, [{ prompt: "JSON:", sampling: { maxTokens: 30, temperature: 1, seed: 2, structured: { type: "json" } } }]);
        console.log(core.grammars.started ? "worker" : "none", r.tokenIds[0].length);
        ${destroy ? "core.destroy();" : ""}`;
      const p = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
      expect({ destroy, code: p.exitCode, out: p.stdout.toString().split(" ")[0] }).toEqual({ destroy, code: 0, out: "worker" });
    }
  });
});

describe("a pool of grammar Workers", () => {
  const PERSON = { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) };

  test("the default is a quarter of the cores, 1 to 4; --grammar-workers sets it and travels to replicas", () => {
    expect([1, 2, 4, 8, 12, 16, 64].map((c) => defaultGrammarWorkers(c))).toEqual([1, 1, 1, 2, 3, 4, 4]);
    expect([1, 2, 4, 8, 12, 16, 64].map((c) => defaultGrammarWorkers(c, true))).toEqual([1, 1, 2, 4, 6, 8, 8]);
    expect(engineOptionsFromFlags({ "grammar-workers": "3" })).toEqual({ grammarWorkers: 3 });
    expect(engineOptionsFromFlags({ "grammar-workers": "0" })).toEqual({ grammarWorkers: 0 }); // the default
    expect(() => engineOptionsFromFlags({ "grammar-workers": "-1" })).toThrow(UsageError);
    expect(engineArgs({ grammarWorkers: 2 })).toEqual(["--grammar-workers", "2"]);
    expect(ENGINE_FLAG_HELP).toContain("--grammar-workers N");
  });

  test("samples spread over the Workers; masks from each equal XGrammar's in this thread, through rollback", async () => {
    const e = await loadDemo({ grammarWorkers: 3 });
    const here = await GrammarService.create({ modelDir: defaultModelDir(), vocabSize: 2048 }, [...e.tokenizer.eosTokenIds]);
    try {
      const g = e.grammars;
      expect(g.numWorkers).toBe(3);
      const gs = await g.forRequest(PERSON, 6);
      expect(gs.map((s) => s.worker).sort()).toEqual([0, 0, 1, 1, 2, 2]);
      const more = await g.forRequest(PERSON, 1);
      expect(e.grammars.stats).toMatchObject({ workers: 3, compiles: 3 }); // compiled once in each Worker
      gs.push(...more);
      const ids = e.tokenizer.encode('{"name":"Zed","age":4', { addSpecialTokens: false });
      expect(ids.length).toBeGreaterThanOrEqual(gs.length + 1);
      const { matchers } = await here.create(PERSON, 1);
      const xgrammar = async (state: number[]) => {
        const { masks, refused } = await here.masks([{ matcher: matchers[0]!, rollback: 0, accept: state }]);
        await here.masks([{ matcher: matchers[0]!, rollback: state.length, accept: [] }]);
        expect(refused).toEqual([]);
        return masks;
      };
      // Each sample in its own state, so every Worker computes; then each one rolled back a token.
      for (const cut of [1, 0]) {
        const states = gs.map((_, i) => ids.slice(0, i + 1 + cut));
        gs.forEach((s, i) => expect(s.syncTo(states[i]!)).toBe(true));
        await g.masksFor(gs);
        for (let i = 0; i < gs.length; i++) expect(gs[i]!.nextMask).toEqual(await xgrammar(states[i]!));
      }
      expect(g.takeFailures()).toBe(false);
      for (const s of gs) g.release(s);
    } finally {
      here.dispose();
      e.destroy();
    }
  });

  test("K Workers give the tokens of one, n > 1 included", async () => {
    const reqs = [
      { prompt: "Free text:", sampling: FREE },
      { prompt: "Items:", sampling: { ...BOUND, maxTokens: 50 } },
      { prompt: "Person:", sampling: { maxTokens: 60, temperature: 1, seed: 7, n: 4, structured: PERSON } },
    ];
    const one = await runAll(core, reqs);
    const e = await loadDemo({ grammarWorkers: 3 });
    try {
      const three = await runAll(e, reqs);
      expect(three.map((r) => r.tokenIds)).toEqual(one.map((r) => r.tokenIds));
      expect(e.grammars.stats.workers).toBe(3);
    } finally {
      e.destroy();
    }
  });

  test("while one Worker is held in a compile, only its samples sit out; the other Worker's decode on", async () => {
    const e = await loadDemo({ maxSeqs: 16, grammarWorkers: 2 });
    try {
      const d = new Driver(e);
      await d.add("free", "Free text:", FREE);
      await d.add("bound", "Items:", BOUND); // Worker 0
      await d.add("bound2", "Items:", BOUND); // Worker 1 (the least loaded)
      for (let i = 0; i < PAST_CACHE; i++) await d.step();
      const release = e.grammars.debugHoldWorker(0);
      // Loads tie (1 and 1): the new schema compiles in Worker 0, behind the hold.
      const compiling = d.add("new", "Person:", { maxTokens: 40, temperature: 1, seed: 4, structured: { type: "json", schema: twentyFields(`pool${Date.now()}`) } });
      await d.step(); // may still use masks asked for before the hold
      const [free, bound, bound2] = [d.count("free"), d.count("bound"), d.count("bound2")];
      for (let i = 0; i < 8; i++) await d.step();
      expect(d.count("free")).toBe(free + 8);
      expect(d.count("bound")).toBe(bound);
      expect(d.count("bound2")).toBe(bound2 + 8);
      release();
      await compiling;
      await d.finish();
      expect(d.errors.size).toBe(0);
      expect(d.ids.get("free")).toEqual(alone.free);
      expect(d.ids.get("bound")).toEqual(alone.bound);
      expect(d.ids.get("bound2")).toEqual(alone.bound);
    } finally {
      e.destroy();
    }
  });

  test("a crash of one Worker fails only its samples; the next request replaces it", async () => {
    const e = await loadDemo({ maxSeqs: 16, grammarWorkers: 2 });
    try {
      const d = new Driver(e);
      await d.add("free", "Free text:", FREE);
      await d.add("bound", "Items:", BOUND); // Worker 0
      await d.add("bound2", "Items:", BOUND); // Worker 1
      await d.step();
      e.grammars.debugCrashWorker(0);
      for (let i = 0; i < 50 && !d.errors.has("bound"); i++) await d.step();
      expect(d.errors.get("bound")).toBeInstanceOf(EngineStepError);
      expect(d.errors.get("bound")!.message).toContain("grammar worker crashed");
      expect(e.grammars.started).toBe(true); // Worker 1 runs on
      await d.add("again", "Items:", BOUND);
      await d.finish();
      expect(d.errors.has("bound2")).toBe(false);
      expect(d.ids.get("bound2")).toEqual(alone.bound);
      expect(d.ids.get("again")).toEqual(alone.bound);
      expect(d.ids.get("free")).toEqual(alone.free);
      expect(e.grammars.stats.workers).toBe(3);
      expect(e.metrics().kvBlocksFree).toBe(e.metrics().kvBlocksTotal);
    } finally {
      e.destroy();
    }
  });

  test("a Worker stuck past the mask timeout fails only its samples", async () => {
    const e = await loadDemo({ maxSeqs: 16, grammarWorkers: 2 });
    try {
      e.grammars.maskTimeoutMs = 300;
      const d = new Driver(e);
      await d.add("bound", "Items:", { ...BOUND, seed: 24 }); // Worker 0; states not in the mask cache
      await d.add("bound2", "Items:", { ...BOUND, seed: 25 }); // Worker 1
      await d.step();
      const release = e.grammars.debugHoldWorker(0);
      for (let i = 0; i < 5 && !d.errors.has("bound"); i++) await d.step();
      release();
      expect(d.errors.get("bound")!.message).toContain("computed no masks in 300 ms");
      await d.finish();
      expect(d.errors.has("bound2")).toBe(false);
      expect(d.count("bound2")).toBe(100);
    } finally {
      e.destroy();
    }
  });
});
