// The TypeScript side reads FASTGEN_* variables only through src/envVars.ts, whose registry
// `fastgen --help-env` prints (as libfastgen reads its own only through core/knobs.h).
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ENV_VARS } from "../../src/envVars";
import { helpEnvText } from "../../src/cli/helpEnv";

const SRC = join(import.meta.dir, "..", "..", "src");
const sources = (readdirSync(SRC, { recursive: true }) as string[])
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && f !== "envVars.ts")
  .map((f) => ({ file: f, text: readFileSync(join(SRC, f), "utf8") }));

describe("FASTGEN_* environment variables", () => {
  test("no file but src/envVars.ts reads process.env.FASTGEN_*", () => {
    const direct = sources.filter((s) => /process\.env(\.|\[\s*["'`])FASTGEN_/.test(s.text)).map((s) => s.file);
    expect(direct).toEqual([]);
  });

  test("every envVar(...) name is registered", () => {
    const used = new Set(sources.flatMap((s) => [...s.text.matchAll(/[eE]nvVar\("(FASTGEN_[A-Z_]+)"/g)].map((m) => m[1]!)));
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect(Object.keys(ENV_VARS)).toContain(name);
  });

  test("--help-env lists the registry after the library's knobs", () => {
    const text = helpEnvText();
    for (const name of Object.keys(ENV_VARS)) expect(text).toContain(name);
    expect(text).toContain("FASTGEN_STEP_OVERLAP");  // a library knob
  });
});
