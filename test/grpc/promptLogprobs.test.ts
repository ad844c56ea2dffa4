// Prompt logprobs (echo + logprobs) survive the trip to a replica: RemoteEngine against a gRPC
// server over the real engine gives the same prompt logprobs as the engine in-process.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { startEngine } from "../../src/engine/asyncEngine";
import type { GenerationDelta } from "../../src/engine/types";
import type { FastGenGrpcServer } from "../../src/grpc/grpcServer";
import { createGrpcServer } from "../../src/grpc/grpcServer";
import { RemoteEngine } from "../../src/grpc/remoteEngine";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
let engine: AsyncEngine;
let server: FastGenGrpcServer;
let remote: RemoteEngine;

beforeAll(async () => {
  engine = await startEngine(FIXTURE, { kvBlocks: 64 });
  server = createGrpcServer({ engine });
  const { address } = await server.listen("127.0.0.1", 0);
  remote = new RemoteEngine(address, engine.tokenizer);
});
afterAll(async () => {
  await remote.shutdown();
  await server.stop();
  await engine.shutdown();
});

async function firstDelta(e: { generate: AsyncEngine["generate"] }, id: string, promptIds: number[]): Promise<GenerationDelta> {
  const deltas: GenerationDelta[] = [];
  for await (const d of e.generate({ requestId: id, promptIds, sampling: { maxTokens: 2, temperature: 0, ignoreEos: true, promptLogprobs: 2 } })) deltas.push(d);
  return deltas[0]!;
}

test("prompt logprobs over gRPC equal the in-process ones", async () => {
  const promptIds = engine.tokenizer.encode("The value is the one we have", { addSpecialTokens: true });
  const local = await firstDelta(engine, "local", promptIds);
  const viaGrpc = await firstDelta(remote, "remote", promptIds);
  expect(local.promptLogprobs).toHaveLength(promptIds.length);
  expect(local.promptLogprobs![0]).toBeNull();
  expect(viaGrpc.promptLogprobs).toHaveLength(promptIds.length);
  viaGrpc.promptLogprobs!.forEach((lp, i) => {
    if (i === 0) return expect(lp).toBeNull();
    expect(lp!.id).toBe(promptIds[i]!);
    expect(lp!.logprob).toBeCloseTo(local.promptLogprobs![i]!.logprob, 5);
    expect(lp!.top.map(([id]) => id)).toEqual(local.promptLogprobs![i]!.top.map(([id]) => id));
  });
});
