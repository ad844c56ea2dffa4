// FP8 on the CUDA backend before its FP8 kernels exist (issue #18): FP8 weights, given or quantized
// at load, are dequantized to bf16, so the device's logits sit within bf16 noise of the CPU
// reference's on the same FP8 weights; an FP8 KV cache is refused as not yet implemented. (Below
// sm_89 both are refused naming the GPU; the lent H100/H200 are sm_90, so that branch is not run.)
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadWeights, openModelDir } from "../../src/model/load";
import { NativeEngine } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { makeFp8Checkpoint } from "../fixtures/make_fp8_checkpoints";
import { bytesOf, makeBatch, randomWeights, relErr, tensorShapes, tinySpec } from "../native/helpers";
import { hasGpu } from "./gpuHelpers";

const root = mkdtempSync(join(tmpdir(), "fastgen-gpu-fp8-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fixtureDir = (name: string) => join(import.meta.dir, "..", "fixtures", name);

function lastLogits(e: NativeEngine, tokens: number[]): Float32Array {
  const blocks = Array.from({ length: Math.ceil(tokens.length / 16) }, (_, i) => i);
  return e.step(makeBatch([{ tokens, context: 0, blocks, wants: true }], { returnLogits: true })).logits!;
}

function fromDir(dir: string, backend: "cpu" | "cuda", spec: Partial<ModelSpec> = {}): NativeEngine {
  const model = openModelDir(dir);
  const e = NativeEngine.create({ ...model.spec, ...spec }, backend);
  loadWeights(model, e);
  model.close();
  e.finalize({ numBlocks: 32, blockSize: 16 });
  return e;
}

describe.skipIf(!hasGpu)("FP8 on CUDA (dequantized to bf16 at load)", () => {
  const tokens = [1, 5, 9, 33, 71, 2, 8, 100, 250, 7, 3];

  test("FP8 checkpoints (channel, block) and --quantization fp8 match the CPU reference within bf16 noise", () => {
    for (const [fixture, format] of [["llama-gqa", "fp8-channel"], ["llama-gqa", "ct-block"], ["falcon-gqa", "fp8-block"]] as const) {
      const { fp8 } = makeFp8Checkpoint(fixtureDir(fixture), join(root, `${fixture}-${format}`), format);
      const cpu = fromDir(fp8, "cpu"), gpu = fromDir(fp8, "cuda");
      const err = relErr(lastLogits(gpu, tokens), lastLogits(cpu, tokens));
      console.log(`${fixture} ${format}: CUDA vs CPU logits rel. err ${err.toExponential(2)}`);
      expect(err).toBeLessThan(5e-2);
      cpu.destroy();
      gpu.destroy();
    }
    const cpu = fromDir(fixtureDir("llama-gqa"), "cpu", { quantization: "fp8" });
    const gpu = fromDir(fixtureDir("llama-gqa"), "cuda", { quantization: "fp8" });
    expect(relErr(lastLogits(gpu, tokens), lastLogits(cpu, tokens))).toBeLessThan(5e-2);
    cpu.destroy();
    gpu.destroy();
  });

  test("an FP8 KV cache is refused as not yet implemented", () => {
    const spec = tinySpec();
    const e = NativeEngine.create(spec, "cuda");
    const shapes = tensorShapes(spec);
    for (const [name, data] of randomWeights(spec, 1)) e.loadTensor(name, "F32", shapes.get(name)!, bytesOf(data));
    try {
      expect(() => e.finalize({ numBlocks: 8, kvCacheDtype: "fp8" })).toThrow("not yet implemented on CUDA");
      e.finalize({ numBlocks: 8 });  // still usable with the default
    } finally {
      e.destroy();
    }
  });
});
