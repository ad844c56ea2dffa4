// A sequence the KV pool can never hold: the scheduler rejects it (scheduler/planBuilder.ts), and
// the engine fails its request with a RequestRejectedError naming the shortfall (HTTP 400), never
// a "length" finish. Admission (prompt + max_tokens <= max model length <= the pool) keeps such a
// request out today, so the test lifts that check to reach the scheduler's own guard behind it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import type { StepItem } from "../../src/engine/engineCore";
import { RequestRejectedError } from "../../src/engine/types";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
const prompt = (len: number, salt = 0) => Array.from({ length: len }, (_, i) => 5 + ((i * 7 + salt) % 90));

describe("a request the KV pool can never hold", () => {
  let core: EngineCore;
  beforeAll(async () => {
    core = await EngineCore.load(FIXTURE, { backend: "cpu", kvBlocks: 4, blockSize: 16, maxSeqs: 4 }); // a pool of 64 tokens
    (core as unknown as { admission: { maxModelLen: number } }).admission.maxModelLen = 1_000;
  });
  afterAll(() => core.destroy());

  function drain(): Map<string, StepItem[]> {
    const byId = new Map<string, StepItem[]>();
    while (core.hasWork()) for (const it of core.step()) byId.set(it.id, [...(byId.get(it.id) ?? []), it]);
    return byId;
  }

  test("fails with the scheduler's message; its siblings end with it and the others run on", () => {
    core.addRequest("big", prompt(70), { maxTokens: 2, n: 2, temperature: 1, seed: 3 });
    core.addRequest("small", prompt(8, 1), { maxTokens: 4, temperature: 0, ignoreEos: true });
    const items = drain();
    const big = items.get("big")!;
    expect(big).toHaveLength(1);
    expect(big[0]!.deltas).toEqual([]);
    expect(big[0]!.error).toBeInstanceOf(RequestRejectedError);
    expect(big[0]!.error!.message).toBe("the request can never fit in the KV cache: sequence needs 5 KV blocks for 70 tokens; the pool has 4");
    const small = items.get("small")!.flatMap((it) => it.deltas);
    expect(small.flatMap((d) => d.tokenIds)).toHaveLength(4);
    expect(small.at(-1)!.finishReason).toBe("length");
    const m = core.metrics();
    expect(m.kvBlocksFree).toBe(m.kvBlocksTotal);
    expect(m.requestsFinishedTotal).toBe(2);
    expect(core.abort("big")).toEqual([]); // forgotten
  });
});
