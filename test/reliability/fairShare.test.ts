// Fair share and limits on the demo model (issue 25, item 8). One request of many long samples
// must not hold the engine: a small request beside it gets its tokens in a few passes, and the
// big request's samples still all finish, with the tokens they make when run alone. --max-queue
// bounds gRPC calls as it bounds HTTP requests, in one count.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { EngineCore } from "../../src/engine/engineCore";
import type { SamplingOptions } from "../../src/engine/samplingOptions";
import { defaultModelDir } from "../../src/model/defaultModel";
import type { ProtoClient } from "../grpc/protoClient";
import { protoClient } from "../grpc/protoClient";
import type { ServeProcess } from "./helpers";
import { checkErrorBody, spawnServe } from "./helpers";

const BIG: SamplingOptions = { maxTokens: 40, n: 24, temperature: 1, seed: 11, ignoreEos: true };
const SMALL: SamplingOptions = { maxTokens: 4, temperature: 0, ignoreEos: true };

/** Runs `core` until `until` holds or it is idle; returns every request's tokens per sample. */
function run(core: EngineCore, tokens: Map<string, number[][]>, until: () => boolean = () => false): number {
  let steps = 0;
  while (core.hasWork() && !until()) {
    steps++;
    for (const item of core.step()) {
      if (item.error) throw item.error;
      const per = tokens.get(item.id) ?? [];
      tokens.set(item.id, per);
      for (const d of item.deltas) (per[d.index] ??= []).push(...d.tokenIds);
    }
  }
  return steps;
}

describe("EngineCore on the demo model", () => {
  test("a 4-token request finishes in a few passes beside n = 24 x 40 tokens; no sample is lost", async () => {
    // 8 sequences a pass: the big request alone fills every place for 3 rounds of 40 passes.
    const core = await EngineCore.load(defaultModelDir(), { backend: "cpu", maxSeqs: 8, kvBlocks: 256, blockSize: 16 });
    try {
      const prompt = core.tokenizer.encode("Once upon a time");
      const alone = new Map<string, number[][]>();
      core.addRequest("big", prompt, BIG);
      run(core, alone);

      const shared = new Map<string, number[][]>();
      core.addRequest("big", prompt, BIG);
      run(core, shared, (() => {
        let k = 0;
        return () => ++k > 5; // the big request is decoding in every place
      })());
      core.addRequest("small", prompt, SMALL);
      const steps = run(core, shared, () => (shared.get("small")?.[0]?.length ?? 0) === SMALL.maxTokens);
      // One pass per token (the first in the pass it arrives in); before fair share it waited
      // for 8 of the big request's samples to finish: 40+ passes.
      expect(steps).toBe(SMALL.maxTokens);
      expect(core.metrics().preemptionsTotal).toBeGreaterThan(0);
      run(core, shared);
      // Preempted samples were recomputed and went on: every token as when the request ran alone.
      expect(shared.get("big")).toEqual(alone.get("big")!);
      expect(shared.get("big")!.every((t) => t.length === BIG.maxTokens)).toBe(true);
      const m = core.metrics();
      expect(m.kvBlocksFree).toBe(m.kvBlocksTotal);
    } finally {
      core.destroy();
    }
  }, 30_000);

  test("the same for one request of 24 prompts (prompt j's sample counts as the j-th)", async () => {
    const core = await EngineCore.load(defaultModelDir(), { backend: "cpu", maxSeqs: 8, kvBlocks: 256, blockSize: 16 });
    try {
      const prompt = core.tokenizer.encode("Once upon a time");
      const one: SamplingOptions = { ...BIG, n: 1 };
      const tokens = new Map<string, number[][]>();
      for (let j = 0; j < 24; j++) core.addRequest(`big-${j}`, prompt, { ...one, seed: 11 + j }, j);
      run(core, tokens, (() => {
        let k = 0;
        return () => ++k > 5;
      })());
      core.addRequest("small", prompt, SMALL);
      const steps = run(core, tokens, () => (tokens.get("small")?.[0]?.length ?? 0) === SMALL.maxTokens);
      expect(steps).toBe(SMALL.maxTokens);
      run(core, tokens);
      for (let j = 0; j < 24; j++) expect(tokens.get(`big-${j}`)![0]!.length).toBe(BIG.maxTokens);
    } finally {
      core.destroy();
    }
  }, 30_000);
});

describe("fastgen serve --max-seqs 8 --max-queue 4", () => {
  let serve: ServeProcess;
  let grpcAddress: string;
  let c: ProtoClient;
  beforeAll(async () => {
    serve = await spawnServe(["--max-seqs", "8", "--max-queue", "4", "--kv-blocks", "512", "--threads", "1"]);
    grpcAddress = serve.stdout.join("\n").match(/grpc:\/\/(\S+)/)![1]!;
    c = protoClient(grpcAddress);
  });
  afterAll(async () => {
    c?.close();
    expect(await serve.stop()).toBe(0);
  });

  const passes = async () => {
    const text = await (await fetch(`${serve.url}/metrics`)).text();
    return Number(text.match(/^fastgen:iteration_tokens_total_count\{[^}]*\} (\d+)/m)![1]);
  };

  test("a small request's passes stay few while an n = 32 request streams", async () => {
    const big = new AbortController();
    const res = await fetch(`${serve.url}/v1/completions`, {
      method: "POST", signal: big.signal, headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 600, n: 32, stream: true, ignore_eos: true, seed: 1 }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read(); // the big request is running
    const before = await passes();
    const small = await fetch(`${serve.url}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "Hello", max_tokens: 4, ignore_eos: true }),
    });
    const body = (await small.json()) as { usage: { completion_tokens: number } };
    const during = (await passes()) - before;
    expect(small.status).toBe(200);
    expect(body.usage.completion_tokens).toBe(4);
    // 4 passes for its tokens plus those run while its HTTP request is read and answered.
    // Without fair share it waited for 8 of the 32 samples' 600 tokens: 600+ passes.
    expect(during).toBeLessThan(100);
    const { done } = await reader.read();
    expect(done).toBe(false); // the big request was still streaming all along
    big.abort();
  }, 60_000);

  test("gRPC calls count against --max-queue with HTTP requests: RESOURCE_EXHAUSTED and 503 past it", async () => {
    // The previous test's aborted request gives its place back asynchronously: start from none.
    const inFlight = async () => {
      const text = await (await fetch(`${serve.url}/metrics`)).text();
      return Number(text.match(/^fastgen:requests_in_flight(?:\{[^}]*\})? (\d+)/m)![1]);
    };
    for (const deadline = Date.now() + 20_000; (await inFlight()) > 0 && Date.now() < deadline;) await Bun.sleep(20);
    expect(await inFlight()).toBe(0);
    // Four long streams hold the four places (each has sent a delta, so each was admitted).
    const streams = Array.from({ length: 4 }, (_, i) =>
      c.GenerateStream({ prompt: { text: `story ${i}` }, params: { max_new_tokens: 900, ignore_eos: true } }));
    await Promise.all(streams.map((s) => new Promise((resolve, reject) => s.once("data", resolve).once("error", reject))));
    const refused = await c.Generate({ prompts: [{ text: "x" }], params: { max_new_tokens: 2 } }).then(() => null, (e) => e);
    expect(refused?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused.details).toMatch(/overloaded.*4 requests in flight/);
    const http = await fetch(`${serve.url}/v1/completions`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "x", max_tokens: 2 }),
    });
    expect(http.status).toBe(503);
    expect(checkErrorBody(await http.json(), "503").message).toMatch(/overloaded/);
    // A cancelled call gives its place back.
    streams[0]!.on("error", () => {}).cancel();
    let ok = null;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await c.Generate({ prompts: [{ text: "x" }], params: { max_new_tokens: 2 } }).catch(() => null);
      if (!ok) await Bun.sleep(20);
    }
    expect(ok?.responses?.[0]?.generated_length).toBe(2);
    for (const s of streams.slice(1)) s.on("error", () => {}).cancel();
  }, 60_000);
});
