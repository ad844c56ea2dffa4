// The decode GEMVs' CUDA source run on the CPU (emu.h's model of CUDA, built by build.ts), each
// against a double-precision GEMM of the same values; no GPU needed, skipped without g++ or the
// CUDA headers:
//   gemvSmallHarness.cpp     the small-M tensor-core GEMV on bf16 weights at 1-16 tokens, plain
//                            (bf16 / fp32 / accumulated) and gated, tiles and k steps partly filled;
//   fp8GemvSmallHarness.cpp  its FP8 E4M3 loaders (per-row and per-K-block scales) against the
//                            dequantized weights, with 16-byte loads (the default) and 8-byte ones;
//   gemvHarness.cpp          the one-token bf16 GEMVs of gemm.cu (narrow, pipelined or not; wide;
//                            gated) at the 7B shapes and odd ones.
import { describe, expect, test } from "bun:test";
import { buildEmu, cudaInclude } from "./build";

const canBuild = process.arch === "x64" && cudaInclude() !== null && Bun.which("g++") !== null;  // emu.cpp switches x86-64 registers

describe.skipIf(!canBuild)("the small-M GEMV on the CPU model of CUDA", () => {
  test("1-16 tokens, plain and gated, against a double-precision GEMM", () => {
    const bin = buildEmu("gemv_small_emu", ["libfastgen/src/cuda/gemv_small.cu"], "gemvSmallHarness.cpp")!;
    const r = Bun.spawnSync([bin], { stdout: "pipe", stderr: "pipe" });
    const out = r.stdout.toString() + r.stderr.toString();
    for (const line of out.trim().split("\n")) console.log(line);
    expect(out).not.toContain("FAIL");
    expect(out).toMatch(/(\d+) of \1 cases passed/);
    expect(r.exitCode).toBe(0);
  }, 240_000);
});

describe.skipIf(!canBuild)("the small-M GEMV's FP8 loaders on the CPU model of CUDA", () => {
  for (const depth of ["16", "8"])
    test(`FASTGEN_FP8_SMALL_KDEPTH=${depth}: row and K-block scales, plain and gated, against the dequantized GEMM`, () => {
      const bin = buildEmu("fp8_gemv_small_emu", ["libfastgen/src/cuda/fp8_gemv_small.cu", "libfastgen/src/cuda/gemv_small.cu"], "fp8GemvSmallHarness.cpp")!;
      const r = Bun.spawnSync([bin], { stdout: "pipe", stderr: "pipe", env: { ...process.env, FASTGEN_FP8_SMALL_KDEPTH: depth } });
      const out = r.stdout.toString() + r.stderr.toString();
      for (const line of out.trim().split("\n")) console.log(line);
      expect(out).not.toContain("FAIL");
      expect(out).toMatch(/(\d+) of \1 cases passed/);
      expect(r.exitCode).toBe(0);
    }, 240_000);
});

describe.skipIf(!canBuild)("the one-token bf16 GEMVs on the CPU model of CUDA", () => {
  for (const pipe of ["1", "0"])
    test(`FASTGEN_GEMV_PIPE=${pipe}: narrow, wide and gated, against a double-precision GEMV`, () => {
      const bin = buildEmu("gemv_emu", ["libfastgen/src/cuda/gemm.cu", "libfastgen/src/cuda/gemv_small.cu"], "gemvHarness.cpp")!;
      const r = Bun.spawnSync([bin], { stdout: "pipe", stderr: "pipe", env: { ...process.env, FASTGEN_GEMV_PIPE: pipe } });
      const out = r.stdout.toString() + r.stderr.toString();
      for (const line of out.trim().split("\n")) console.log(line);
      expect(out).not.toContain("FAIL");
      expect(out).toMatch(/(\d+) of \1 cases passed/);
      expect(r.exitCode).toBe(0);
    }, 240_000);
});
