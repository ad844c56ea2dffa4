// `fastgen --help-env` prints libfastgen's knob registry (core/knobs.h) as the library reports it.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { libraryKnobs } from "../../src/native";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");

describe("fastgen --help-env", () => {
  test("the library reports every FASTGEN_* knob once, with type, default and meaning", () => {
    const knobs = libraryKnobs();
    const names = knobs.map((k) => k.name);
    expect(new Set(names).size).toBe(names.length);
    for (const k of knobs) {
      expect(k.name).toMatch(/^FASTGEN_[A-Z][A-Z0-9_]*$/);
      expect(["int", "flag", "string"]).toContain(k.type);
      expect(k.meaning.length).toBeGreaterThan(10);
    }
    for (const name of ["FASTGEN_NUM_THREADS", "FASTGEN_CPU_ISA", "FASTGEN_CUDA_GRAPHS", "FASTGEN_TP_TIMEOUT_MS"])
      expect(names).toContain(name);
  });

  test("prints the table, with the values this environment sets", () => {
    const p = Bun.spawnSync([process.execPath, CLI, "--help-env"], {
      env: { ...process.env, FASTGEN_ATTN_SPLITS: "3" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(p.exitCode).toBe(0);
    const out = p.stdout.toString();
    expect(out).toContain("FASTGEN_NUM_THREADS");
    expect(out).toMatch(/FASTGEN_ATTN_SPLITS .*\[set: "3"\]/);
  });
});
