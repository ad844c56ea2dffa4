/**
 * An `if constexpr` whose statement starts on the next line is braced, in every CUDA source.
 * nvcc 13.0 miscompiled the unbraced form: in gemv_small.cuh,
 *
 *   if constexpr (DN == kDnRead)
 *     for (int i = ...; ...) asm volatile("prefetch ..." ...);
 *   for (int i = 0; i < mine; i += 2 * S) { ...the main loop... }
 *
 * compiled every DN = 0 instantiation without its main loop (30 registers instead of 70, garbage
 * out on the device; bench/results/device-wave18-h100.md, call 3), while g++ (the CPU model of
 * CUDA, test/cudaEmu) ran it correctly. One-line forms (`if constexpr (X) stmt;`) are fine.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const dir = join(import.meta.dir, "../../libfastgen/src/cuda");

/** `file:line` of each `if constexpr (...)` that ends its line without an opening brace. */
export function unbraced(source: string, file: string): string[] {
  const out: string[] = [];
  source.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\/\/.*$/, "").trimEnd();
    const at = line.search(/\bif constexpr\s*\(/);
    if (at < 0) return;
    // The condition's closing parenthesis, then whatever follows it on this line.
    let depth = 0, end = -1;
    for (let k = line.indexOf("(", at); k < line.length; k++) {
      if (line[k] === "(") depth++;
      else if (line[k] === ")" && --depth === 0) { end = k; break; }
    }
    if (end >= 0 && line.slice(end + 1).trim() === "") out.push(`${file}:${i + 1}`);
  });
  return out;
}

describe("CUDA sources", () => {
  test("the rule finds the form that was miscompiled, and not the one-line or braced forms", () => {
    expect(unbraced("  if constexpr (DN == 1)\n    for (;;) x();\n", "a")).toEqual(["a:1"]);
    expect(unbraced("  if constexpr (f(a, b)) // why\n    y();\n", "b")).toEqual(["b:1"]);
    expect(unbraced("  if constexpr (A) x();\n  if constexpr (B) {\n  } else if constexpr (C) {\n", "c")).toEqual([]);
  });

  test("every multi-line if constexpr is braced", () => {
    const bad: string[] = [];
    for (const f of readdirSync(dir).filter((n) => /\.(cu|cuh|h)$/.test(n)).sort())
      bad.push(...unbraced(readFileSync(join(dir, f), "utf8"), f));
    expect(bad).toEqual([]);
  });
});
