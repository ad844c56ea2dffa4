// --quantization and --kv-cache-dtype (issue #18): parsed like vLLM's, refused with the supported
// values named, and passed on to `fastgen replica` processes.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import { runToCompletion } from "../../src/engine/runToCompletion";
import { engineArgs } from "../../src/lb/frontEnd";
import { ENGINE_FLAG_HELP, UsageError, engineOptionsFromFlags } from "../../src/ops/engineFlags";

describe("--quantization / --kv-cache-dtype", () => {
  test("fp8 and none / auto and fp8 (fp8_e4m3 too) parse", () => {
    expect(engineOptionsFromFlags({ quantization: "fp8" })).toEqual({ quantization: "fp8" });
    expect(engineOptionsFromFlags({ quantization: "none" })).toEqual({ quantization: "none" });
    expect(engineOptionsFromFlags({ "kv-cache-dtype": "fp8" })).toEqual({ kvCacheDtype: "fp8" });
    expect(engineOptionsFromFlags({ "kv-cache-dtype": "fp8_e4m3" })).toEqual({ kvCacheDtype: "fp8" });
    expect(engineOptionsFromFlags({ "kv-cache-dtype": "auto" })).toEqual({ kvCacheDtype: "auto" });
    expect(engineOptionsFromFlags({})).toEqual({});
  });

  test("other values are usage errors naming what is supported", () => {
    for (const [flags, message] of [
      [{ quantization: "awq" }, "--quantization awq is not supported; supported: none, fp8"],
      [{ quantization: "gptq" }, "Pre-quantized FP8 checkpoints (quant_method fp8, compressed-tensors float-quantized) load without the flag"],
      [{ "kv-cache-dtype": "fp8_e5m2" }, '--kv-cache-dtype must be one of auto, fp8 (fp8 = E4M3), got "fp8_e5m2"'],
      [{ "kv-cache-dtype": "int8" }, "--kv-cache-dtype must be one of auto, fp8"],
    ] as [Record<string, string>, string][]) {
      expect(() => engineOptionsFromFlags(flags)).toThrow(UsageError);
      expect(() => engineOptionsFromFlags(flags)).toThrow(message);
    }
  });

  test("replicas get the same flags; --help lists them", () => {
    expect(engineArgs({ quantization: "fp8", kvCacheDtype: "fp8" })).toEqual(["--quantization", "fp8", "--kv-cache-dtype", "fp8"]);
    expect(ENGINE_FLAG_HELP).toContain("--quantization Q");
    expect(ENGINE_FLAG_HELP).toContain("--kv-cache-dtype D");
  });
});

describe("fastgen generate --quantization fp8 --kv-cache-dtype fp8", () => {
  const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
  const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
  const run = (...args: string[]) => {
    const p = Bun.spawnSync([process.execPath, CLI, ...args], { stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  };

  test("runs on the CPU and generates what the in-process engine does with the same options", async () => {
    const prompt = JSON.parse(readFileSync(join(FIXTURE, "reference.json"), "utf8")).prompts[1];
    const ids = prompt.prompt_ids as number[];
    const r = run("generate", "--model", FIXTURE, "--backend", "cpu", "--quantization", "fp8", "--kv-cache-dtype", "fp8",
      "--prompt-ids", ids.join(","), "--max-tokens", "8", "--ignore-eos", "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const core = await EngineCore.load(FIXTURE, { backend: "cpu", quantization: "fp8", kvCacheDtype: "fp8" });
    const [want] = runToCompletion(core, [{ promptIds: ids }], { temperature: 0, ignoreEos: true, maxTokens: 8 });
    core.destroy();
    expect(JSON.parse(r.stdout).token_ids).toEqual(want!.tokenIds);
    expect(want!.tokenIds).not.toEqual(prompt.greedy_ids.slice(0, 8));  // the flags took effect
  });

  test("a bad value is a usage error (exit 2)", () => {
    const r = run("generate", "--model", FIXTURE, "--quantization", "int4", "--prompt", "x");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--quantization int4 is not supported; supported: none, fp8");
  });
});
