// Grammar-constrained decoding on the real engine (demo model, CPU): a random-ish model writes
// schema-valid JSON, regex and choice matches only because every sampled token is masked. The
// masks come from the grammar Worker (src/grammar/worker/); the last tests check them against
// XGrammar run in this thread.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { EngineCore } from "../../src/engine/engineCore";
import { EngineStepError, RequestRejectedError } from "../../src/engine/types";
import { GrammarService } from "../../src/grammar/worker/grammarService";
import { defaultModelDir } from "../../src/model/defaultModel";
import { PERSON_SCHEMA, loadDemo, runAll, schemaErrors } from "./helpers";

let core: EngineCore;
beforeAll(async () => {
  core = await loadDemo();
});
afterAll(() => core.destroy());

const JSON_SAMPLING = { maxTokens: 400, temperature: 1, seed: 7, structured: { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) } };

describe("constrained decoding", () => {
  test("json schema: every sample of n = 4 parses and validates", async () => {
    const [r] = await runAll(core, [{ prompt: "Describe a person:", sampling: { ...JSON_SAMPLING, n: 4 } }]);
    for (let i = 0; i < 4; i++) {
      expect(r!.finish[i]).toBe("stop");
      const v = JSON.parse(r!.text[i]!);
      expect(schemaErrors(v, PERSON_SCHEMA)).toEqual([]);
    }
    expect(new Set(r!.text).size).toBeGreaterThan(1); // samples differ: each has its own matcher
  });

  test("json_object, regex and choice", async () => {
    const [obj, re, choice] = await runAll(core, [
      { prompt: "JSON:", sampling: { maxTokens: 300, temperature: 1, seed: 1, structured: { type: "json" } } },
      { prompt: "Phone:", sampling: { maxTokens: 40, temperature: 1, seed: 2, structured: { type: "regex", pattern: "[0-9]{3}-[0-9]{4}" } } },
      { prompt: "Answer:", sampling: { maxTokens: 10, temperature: 1, seed: 3, structured: { type: "choice", choices: ["yes", "no", "maybe so"] } } },
    ]);
    expect(typeof JSON.parse(obj!.text[0]!)).toBe("object");
    expect(re!.text[0]).toMatch(/^[0-9]{3}-[0-9]{4}$/);
    expect(["yes", "no", "maybe so"]).toContain(choice!.text[0]!);
  });

  test("ebnf grammar", async () => {
    const grammar = 'root ::= "(" num ("+" num)* ")"\nnum ::= [1-9] [0-9]?';
    const [r] = await runAll(core, [{ prompt: "Sum:", sampling: { maxTokens: 60, temperature: 1, seed: 4, structured: { type: "grammar", grammar } } }]);
    expect(r!.text[0]).toMatch(/^\([1-9][0-9]?(\+[1-9][0-9]?)*\)$/);
  });

  test("a pass finished before its masks came fails its constrained requests with a clear error", async () => {
    await core.addRequestAsync("early", core.tokenizer.encode("Person:"), { ...JSON_SAMPLING, maxTokens: 5 });
    core.launchStep(); // no prepareMasks: the Worker has not answered yet
    const [item] = core.finishStep();
    expect(item!.error).toBeInstanceOf(EngineStepError);
    expect(item!.error!.message).toContain("mask was not computed");
    expect(core.hasWork()).toBe(false);
  });

  test("a bad schema, regex or grammar is rejected with the compiler's reason", async () => {
    const ids = core.tokenizer.encode("x");
    for (const structured of [
      { type: "json" as const, schema: "{not json" },
      { type: "regex" as const, pattern: "(unclosed" },
      { type: "grammar" as const, grammar: "root ::= undefined_rule" },
    ]) {
      const err = await core.addRequestAsync("bad", ids, { maxTokens: 4, structured }).catch((e) => e);
      expect(err).toBeInstanceOf(RequestRejectedError);
    }
    expect(core.hasWork()).toBe(false);
  });

  test("compiled grammars are cached by key", async () => {
    const stats = core.grammars.stats;
    const before = stats.compiles, hits = stats.hits;
    await runAll(core, [{ prompt: "a", sampling: { ...JSON_SAMPLING, maxTokens: 5 } }, { prompt: "b", sampling: { ...JSON_SAMPLING, maxTokens: 5 } }]);
    expect(stats.compiles).toBe(before);
    expect(stats.hits).toBe(hits + 2);
  });
});

describe("preemption and rollback", () => {
  test("grammars survive preemption by recomputation (small KV pool)", async () => {
    const small = await loadDemo({ kvBlocks: 40, blockSize: 4, maxSeqs: 8 });
    try {
      const reqs = Array.from({ length: 6 }, (_, i) => ({ prompt: `Person number ${i}:`, sampling: { ...JSON_SAMPLING, seed: 100 + i, maxTokens: 120 } }));
      const out = await runAll(small, reqs);
      expect(small.metrics().preemptionsTotal).toBeGreaterThan(0);
      for (const r of out) {
        if (r.finish[0] !== "stop") continue; // max_tokens can cut a long string: only finished ones must parse
        expect(schemaErrors(JSON.parse(r.text[0]!), PERSON_SCHEMA)).toEqual([]);
      }
      expect(out.filter((r) => r.finish[0] === "stop").length).toBeGreaterThan(0);
      const m = small.metrics();
      expect(m.kvBlocksFree).toBe(m.kvBlocksTotal);
    } finally {
      small.destroy();
    }
  });

  test("rollback of k tokens restores the matcher's masks; syncTo re-matches a changed suffix", async () => {
    const g = core.grammars;
    const [seq] = await g.forRequest({ type: "json", schema: JSON.stringify(PERSON_SCHEMA) }, 1);
    const maskOf = async () => {
      await g.masksFor([seq!]);
      return seq!.nextMask!;
    };
    const ids = core.tokenizer.encode('{"name":"Al","age":4', { addSpecialTokens: false });
    const masks: Uint32Array[] = [];
    for (const id of ids) {
      masks.push(await maskOf());
      expect(seq!.accept(id)).toBe(true);
    }
    const computed = g.timing.computed;
    seq!.rollback(3);
    expect(seq!.numAccepted).toBe(ids.length - 3);
    expect(await maskOf()).toEqual(masks[ids.length - 3]!); // the cache's: the state was seen
    expect(seq!.syncTo(ids)).toBe(true);
    expect(seq!.numAccepted).toBe(ids.length);
    const other = core.tokenizer.encode('{"name":"Bo"', { addSpecialTokens: false });
    expect(seq!.syncTo(other)).toBe(true);
    expect(seq!.numAccepted).toBe(other.length);
    await maskOf(); // the Worker's matcher rolls back past "Al" and accepts "Bo"
    expect(g.timing.computed).toBe(computed + 1);
    expect(seq!.failure).toBeNull();
    expect(seq!.accept(core.tokenizer.encode("}", { addSpecialTokens: false })[0]!)).toBe(false); // "age" is required
    expect(seq!.broken).toBe(true);
    g.release(seq!);
  });

  test("samples in one state share one mask; the Worker's masks equal XGrammar's in this thread", async () => {
    const g = core.grammars;
    const schema = { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) };
    const gs = await g.forRequest(schema, 3);
    const ids = core.tokenizer.encode('{"name":"Zed"', { addSpecialTokens: false }); // states no test saw before
    for (const s of gs.slice(0, 2)) expect(s.syncTo(ids)).toBe(true);
    expect(gs[2]!.syncTo(ids.slice(0, -1))).toBe(true);
    const computed = g.timing.computed;
    await g.masksFor(gs);
    expect(g.timing.computed - computed).toBe(2); // gs[0] and gs[1] share one
    expect(gs[1]!.nextMask).toBe(gs[0]!.nextMask);
    const [fresh] = await g.forRequest(schema, 1);
    expect(fresh!.syncTo(ids)).toBe(true);
    expect(g.masksFor([fresh!])).toBeNull(); // from the cache: no Worker
    expect(g.timing.computed - computed).toBe(2);
    expect(fresh!.nextMask).toBe(gs[0]!.nextMask);
    const here = await GrammarService.create({ modelDir: defaultModelDir(), vocabSize: 2048 }, [...core.tokenizer.eosTokenIds]);
    try {
      const { matchers } = await here.create(schema, 1);
      const { masks, refused } = await here.masks([{ matcher: matchers[0]!, rollback: 0, accept: ids }]);
      expect(refused).toEqual([]);
      expect(masks).toEqual(gs[0]!.nextMask!);
      const before = await here.masks([{ matcher: matchers[0]!, rollback: 1, accept: [] }]);
      expect(before.masks).toEqual(gs[2]!.nextMask!);
    } finally {
      here.dispose();
    }
    for (const s of [...gs, fresh!]) g.release(s);
  });
});
