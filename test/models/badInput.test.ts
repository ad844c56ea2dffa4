// Bad model directories and bad prompts: each gets a clear error naming the problem, and the
// process goes on (the next load or request works).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import { runToCompletion } from "../../src/engine/runToCompletion";
import { RequestRejectedError } from "../../src/engine/types";
import { writeSafetensors } from "../helpers/safetensors-writer";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
let tmp: string;
beforeAll(() => (tmp = mkdtempSync(join(tmpdir(), "fastgen-bad-"))));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the fixture with `mutate` applied. */
function brokenCopy(name: string, mutate: (dir: string) => void): string {
  const dir = join(tmp, name);
  cpSync(FIXTURE, dir, { recursive: true });
  mutate(dir);
  return dir;
}

const editConfig = (dir: string, f: (c: Record<string, unknown>) => void) => {
  const c = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  f(c);
  writeFileSync(join(dir, "config.json"), JSON.stringify(c));
};

describe("bad model directories", () => {
  test("a missing directory", async () => {
    await expect(EngineCore.load(join(tmp, "nope"))).rejects.toThrow(/does not exist/);
  });
  test("a missing config.json", async () => {
    const dir = brokenCopy("noconfig", (d) => rmSync(join(d, "config.json")));
    await expect(EngineCore.load(dir)).rejects.toThrow(/config\.json/);
  });
  test("config.json that is not JSON", async () => {
    const dir = brokenCopy("badjson", (d) => writeFileSync(join(d, "config.json"), "{ nope"));
    await expect(EngineCore.load(dir)).rejects.toThrow(/config\.json/);
  });
  test("an unsupported model_type names it and the supported ones", async () => {
    const dir = brokenCopy("gpt2", (d) => editConfig(d, (c) => (c.model_type = "gpt_bigcode")));
    await expect(EngineCore.load(dir)).rejects.toThrow(/gpt_bigcode.*(llama|mistral|qwen2)/s);
  });
  test("a tensor whose shape disagrees with config.json names the tensor", async () => {
    const dir = brokenCopy("shape", (d) => editConfig(d, (c) => (c.intermediate_size = 96)));
    await expect(EngineCore.load(dir)).rejects.toThrow(/mlp\.(gate|up|down)_proj\.weight.*(shape|expected)/s);
  });
  test("a truncated safetensors file", async () => {
    const dir = brokenCopy("trunc", (d) => {
      const p = join(d, "model.safetensors");
      const bytes = readFileSync(p);
      writeFileSync(p, bytes.subarray(0, bytes.length - 1000));
    });
    await expect(EngineCore.load(dir)).rejects.toThrow(/model\.safetensors/);
  });
  test("a corrupt safetensors header", async () => {
    const dir = brokenCopy("corrupt", (d) => writeFileSync(join(d, "model.safetensors"), Buffer.from("\xff\xff\xff\xff\xff\xff\x00\x00garbage")));
    await expect(EngineCore.load(dir)).rejects.toThrow(/model\.safetensors/);
  });
  test("a missing tensor", async () => {
    const dir = brokenCopy("missing", (d) => {
      writeSafetensors(join(d, "model.safetensors"), [{ name: "model.embed_tokens.weight", dtype: "F32", shape: [600, 64], data: new Float32Array(600 * 64).fill(0.01) }]);
    });
    await expect(EngineCore.load(dir)).rejects.toThrow(/missing|not found|required/i);
  });
  test("no tokenizer.json", async () => {
    const dir = brokenCopy("notok", (d) => rmSync(join(d, "tokenizer.json")));
    await expect(EngineCore.load(dir)).rejects.toThrow(/tokenizer/i);
  });
  test("after all that, a good model still loads and runs", async () => {
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 32 });
    const [r] = runToCompletion(core, [{ prompt: "The value is" }], { maxTokens: 3, temperature: 0, ignoreEos: true });
    expect(r!.tokenIds.length).toBe(3);
    core.destroy();
  });
});

describe("bad prompts", () => {
  test("a prompt longer than the context is rejected with both lengths", async () => {
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 64 });
    const long = Array.from({ length: 300 }, (_, i) => 10 + (i % 50));
    expect(() => core.addRequest("a", long, { maxTokens: 4 })).toThrow(RequestRejectedError);
    expect(() => core.addRequest("b", long, { maxTokens: 4 })).toThrow(/300 tokens.*context of 256/);
    expect(() => core.addRequest("c", [1, 2, 99999], { maxTokens: 4 })).toThrow(/99999.*vocabulary/);
    expect(() => core.addRequest("d", [], { maxTokens: 4 })).toThrow(/empty/);
    expect(() => core.addRequest("e", [1, 2], { maxTokens: 4, topP: 7 })).toThrow(/top_p/);
    expect(core.hasWork()).toBe(false);
    core.destroy();
  });
});
