// `fastgen models` lists the weight-map registry; the README's table and the unsupported
// model_type error name the same model types.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { modelRows } from "../../src/cli/models";
import { configToSpec, SUPPORTED_MODEL_TYPES } from "../../src/model/config";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const run = (...args: string[]) => Bun.spawnSync([process.execPath, CLI, ...args], { stdout: "pipe", stderr: "pipe" });

describe("fastgen models", () => {
  test("prints every supported model_type with its family", () => {
    const p = run("models");
    expect(p.exitCode).toBe(0);
    const out = p.stdout.toString();
    for (const r of modelRows()) expect(out).toMatch(new RegExp(`^  ${r.model_type} +${r.family.replace(/[()+.]/g, "\\$&")}`, "m"));
    for (const t of ["qwen3", "qwen3_moe", "qwen2_moe", "gemma2", "gemma3_text", "gemma3", "phi3"]) expect(SUPPORTED_MODEL_TYPES).toContain(t);
  });

  test("--json gives the rows; --help and bad flags", () => {
    const p = run("models", "--json");
    expect(p.exitCode).toBe(0);
    expect(JSON.parse(p.stdout.toString())).toEqual(modelRows());
    expect(run("models", "--help").stdout.toString()).toMatch(/^Usage: fastgen models/);
    expect(run("models", "--bogus").exitCode).toBe(2);
    expect(run("--help").stdout.toString()).toMatch(/models {5}the supported model families/);
  });

  test("the README's table and the unsupported model_type error list the same types", () => {
    const readme = readFileSync(join(import.meta.dir, "..", "..", "README.md"), "utf8");
    const table = readme.slice(readme.indexOf("| model_type | family |")).split("\n\n")[0]!;
    const inTable = [...table.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(inTable).toEqual(SUPPORTED_MODEL_TYPES);
    expect(() => configToSpec({ model_type: "deepseek_v3" })).toThrow(`unsupported model_type "deepseek_v3"; supported: ${SUPPORTED_MODEL_TYPES.join(", ")}`);
  });
});
