// Grammar-constrained decoding on the real engine (demo model, CPU): a random-ish model writes
// schema-valid JSON, regex and choice matches only because every sampled token is masked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { EngineCore } from "../../src/engine/engineCore";
import { RequestRejectedError } from "../../src/engine/types";
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

  test("the synchronous mask path (no prepareMasks) gives the same tokens", async () => {
    const sampling = { ...JSON_SAMPLING, seed: 11 };
    const [a] = await runAll(core, [{ prompt: "Person:", sampling }]);
    const [b] = await runAll(core, [{ prompt: "Person:", sampling }], false);
    expect(b!.tokenIds).toEqual(a!.tokenIds);
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
    const cache = await core.grammars.compiler();
    const before = cache.stats.compiles;
    await runAll(core, [{ prompt: "a", sampling: { ...JSON_SAMPLING, maxTokens: 5 } }, { prompt: "b", sampling: { ...JSON_SAMPLING, maxTokens: 5 } }]);
    expect(cache.stats.compiles).toBe(before);
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
    const cache = await core.grammars.compiler();
    const [g] = await core.grammars.forRequest({ type: "json", schema: JSON.stringify(PERSON_SCHEMA) }, 1);
    const ids = core.tokenizer.encode('{"name":"Al","age":4', { addSpecialTokens: false });
    const masks: Uint32Array[] = [];
    for (const id of ids) {
      masks.push(g!.maskNow().slice());
      expect(g!.accept(id)).toBe(true);
    }
    g!.rollback(3);
    expect(g!.numAccepted).toBe(ids.length - 3);
    expect(g!.maskNow()).toEqual(masks[ids.length - 3]!);
    expect(g!.syncTo(ids)).toBe(true);
    expect(g!.numAccepted).toBe(ids.length);
    const other = core.tokenizer.encode('{"name":"Bo"', { addSpecialTokens: false });
    expect(g!.syncTo(other)).toBe(true);
    expect(g!.numAccepted).toBe(other.length);
    expect(g!.accept(core.tokenizer.encode("}", { addSpecialTokens: false })[0]!)).toBe(false); // "age" is required
    core.grammars.release(g!);
    expect(cache.vocabSize).toBe(2048);
  });

  test("samples in one state share one mask; a cached state's mask equals XGrammar's own", async () => {
    const schema = { type: "json" as const, schema: JSON.stringify(PERSON_SCHEMA) };
    const gs = await core.grammars.forRequest(schema, 3);
    const ids = core.tokenizer.encode('{"name":"Al"', { addSpecialTokens: false });
    for (const g of gs.slice(0, 2)) expect(g.syncTo(ids)).toBe(true);
    expect(gs[2]!.syncTo(ids.slice(0, -1))).toBe(true);
    const computed = core.grammars.timing.computed;
    await core.grammars.prepareMasks();
    expect(core.grammars.timing.computed - computed).toBe(2); // gs[0] and gs[1] share one
    expect(gs[1]!.maskNow()).toBe(gs[0]!.maskNow());
    const [fresh] = await core.grammars.forRequest(schema, 1);
    expect(fresh!.syncTo(ids)).toBe(true);
    await core.grammars.prepareMasks(); // from the cache
    expect(core.grammars.timing.computed - computed).toBe(2);
    expect(fresh!.maskNow()).toBe(gs[0]!.maskNow());
    const own = await (await import("@mlc-ai/web-xgrammar")).GrammarMatcher.createGrammarMatcher(fresh!.grammar);
    for (const id of ids) own.acceptToken(id);
    expect(new Uint32Array((await own.getNextTokenBitmask()).buffer)).toEqual(gs[0]!.maskNow());
    own.dispose();
    for (const g of [...gs, fresh!]) core.grammars.release(g);
  });
});
