import { describe, expect, test } from "bun:test";
import { engineOptionsFromFlags } from "../../src/ops/engineFlags";
import { parseSpeculativeJson, speculativeConfig, speculativeJson } from "../../src/engine/speculative/config";
import { lookup } from "../../src/engine/speculative/ngram";

describe("speculative config", () => {
  test("flags, vLLM's JSON, and the flags over the JSON", () => {
    expect(engineOptionsFromFlags({}).speculative).toBeUndefined();
    expect(engineOptionsFromFlags({ speculative: "ngram" }).speculative).toEqual({ method: "ngram", numSpeculativeTokens: 4, promptLookupMax: 4, promptLookupMin: 2, disableByBatchSize: 8, autoDisable: true });
    expect(engineOptionsFromFlags({ speculative: "ngram", "no-speculative-auto-disable": true }).speculative!.autoDisable).toBe(false);
    expect(parseSpeculativeJson('{"method":"ngram","auto_disable":false}')).toEqual({ method: "ngram", autoDisable: false });
    const c = engineOptionsFromFlags({ "speculative-config": '{"method":"ngram","num_speculative_tokens":5,"prompt_lookup_max":3}', "prompt-lookup-min": "1" }).speculative!;
    expect([c.numSpeculativeTokens, c.promptLookupMax, c.promptLookupMin]).toEqual([5, 3, 1]);
    expect(engineOptionsFromFlags({ "draft-model": "/m" }).speculative!.method).toBe("draft");
    expect(speculativeConfig(parseSpeculativeJson(speculativeJson(c)))).toEqual(c);
    expect(parseSpeculativeJson('{"method":"draft_model","model":"/m"}')).toEqual({ method: "draft", draftModel: "/m" });
  });

  test("bad settings are usage errors naming the setting", () => {
    expect(() => engineOptionsFromFlags({ speculative: "eagle" })).toThrow(/method/);
    expect(() => engineOptionsFromFlags({ speculative: "draft" })).toThrow(/draft model/);
    expect(() => engineOptionsFromFlags({ speculative: "ngram", "prompt-lookup-min": "5" })).toThrow(/prompt_lookup_max/);
    expect(() => engineOptionsFromFlags({ "speculative-config": '{"nope":1}' })).toThrow(/unknown key/);
    expect(() => engineOptionsFromFlags({ "speculative-config": '{"method":"ngram","auto_disable":"yes"}' })).toThrow(/auto_disable/);
  });
});

describe("prompt lookup", () => {
  const t = (a: number[]) => Int32Array.from(a);
  test("the longest suffix first, its latest earlier occurrence, up to k tokens", () => {
    expect([...lookup(t([1, 2, 3, 9, 1, 2, 3, 7, 5, 2, 3]), 1, 3, 2)]).toEqual([7, 5]); // "2 3" latest at 5
    expect([...lookup(t([1, 2, 3, 4, 9, 2, 3, 4]), 1, 3, 9)]).toEqual([9, 2, 3, 4]); // "2 3 4" at 1, capped by the end
    expect([...lookup(t([1, 2, 3]), 1, 3, 4)]).toEqual([]);
    expect([...lookup(t([5, 6, 5]), 2, 3, 4)]).toEqual([]); // nothing of length >= 2 recurs
    expect([...lookup(t([5, 6, 5]), 1, 3, 4)]).toEqual([6, 5]);
  });
});

import { ServerMetrics } from "../../src/server/metrics";

test("/metrics carries vLLM's spec-decode counters and the acceptance rate", () => {
  const engine = {
    requestsWaiting: 0, requestsRunning: 0, kvBlocksTotal: 1, kvBlocksFree: 1, promptTokensTotal: 0, generationTokensTotal: 0,
    requestsFinishedTotal: 0, preemptionsTotal: 0, stepsTotal: 0,
    specDecode: { numDrafts: 3, numDraftTokens: 8, numAcceptedTokens: 6, acceptedPerPos: [3, 2, 1], governorProbes: 5, governorFlips: 2, offByBatch: [1, 0, 1] },
  };
  const text = new ServerMetrics().render("m", engine);
  expect(text).toContain('fastgen:spec_decode_num_draft_tokens_total{model_name="m"} 8');
  expect(text).toContain('fastgen:spec_decode_num_accepted_tokens_total{model_name="m"} 6');
  expect(text).toContain('fastgen:spec_decode_num_accepted_tokens_per_pos_total{model_name="m",position="1"} 2');
  expect(text).toContain('fastgen:spec_decode_acceptance_rate{model_name="m"} 0.75');
  expect(text).toContain('fastgen:spec_decode_governor_probes_total{model_name="m"} 5');
  expect(text).toContain('fastgen:spec_decode_governor_flips_total{model_name="m"} 2');
  expect(text).toContain('fastgen:spec_decode_off{model_name="m",max_batch="1"} 1');
  expect(text).toContain('fastgen:spec_decode_off{model_name="m",max_batch="4"} 1');
  expect(text).toContain('fastgen:spec_decode_off{model_name="m",max_batch="2"} 0');
});
