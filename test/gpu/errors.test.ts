// Clear errors from the CUDA backend: no device (where none is visible), out of memory at load
// (a spec whose weights cannot fit), bad kv configs; the process keeps working afterwards.
import { describe, expect, test } from "bun:test";
import { FastgenError, NativeEngine, Status } from "../../src/native";
import { bytesOf, randomWeights, tensorShapes, tinySpec } from "../native/helpers";
import { hasGpu } from "./gpuHelpers";

test.skipIf(hasGpu)("without a GPU, a CUDA engine fails with a clear error", () => {
  expect(() => NativeEngine.create(tinySpec(), "cuda")).toThrow(/CUDA|device|driver/i);
});

describe.skipIf(!hasGpu)("cuda errors", () => {
  test("weights that cannot fit: FG_ERR_OUT_OF_MEMORY at create, then the device still works", () => {
    const huge = tinySpec({ vocab_size: 256000, hidden_size: 16384, intermediate_size: 65536, num_layers: 400, num_heads: 128, num_kv_heads: 128, head_dim: 128 });
    let err: unknown;
    try {
      NativeEngine.create(huge, "cuda");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FastgenError);
    expect((err as FastgenError).status).toBe(Status.OUT_OF_MEMORY);
    expect(String((err as Error).message)).toMatch(/out of device memory.*GiB/);
    const ok = NativeEngine.create(tinySpec(), "cuda");
    ok.destroy();
  });

  test("a KV pool larger than the device: FG_ERR_OUT_OF_MEMORY at finalize", () => {
    const spec = tinySpec();
    const e = NativeEngine.create(spec, "cuda");
    const shapes = tensorShapes(spec);
    for (const [name, data] of randomWeights(spec, 1)) e.loadTensor(name, "F32", shapes.get(name)!, bytesOf(data));
    try {
      expect(() => e.finalize({ numBlocks: 2_000_000_000, blockSize: 4096 })).toThrow(/out of device memory/);
    } finally {
      e.destroy();
    }
  });

  test("unsupported model features are refused by name", () => {
    expect(() => NativeEngine.create(tinySpec({ head_dim: 512, num_heads: 2, num_kv_heads: 2 }), "cuda")).toThrow(/head_dim <= 256/);
  });
});
