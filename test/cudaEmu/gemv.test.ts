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
import { allPassed, canBuildEmu, runEmu } from "./build";

describe.skipIf(!canBuildEmu)("the decode GEMVs on the CPU model of CUDA", () => {
  test("small-M, bf16 weights: 1-16 tokens, plain and gated, against a double-precision GEMM", () => {
    const r = runEmu("gemv_small_emu", ["libfastgen/src/cuda/gemv_small.cu"], "gemvSmallHarness.cpp");
    expect(allPassed(r.out)).toBe(true);
    expect(r.code).toBe(0);
  }, 240_000);

  for (const depth of ["16", "8"])
    test(`small-M, FP8 loaders, FASTGEN_FP8_SMALL_KDEPTH=${depth}: row and K-block scales against the dequantized GEMM`, () => {
      const r = runEmu("fp8_gemv_small_emu", ["libfastgen/src/cuda/fp8_gemv_small.cu", "libfastgen/src/cuda/gemv_small.cu"],
        "fp8GemvSmallHarness.cpp", { FASTGEN_FP8_SMALL_KDEPTH: depth });
      expect(allPassed(r.out)).toBe(true);
      expect(r.code).toBe(0);
    }, 240_000);

  for (const pipe of ["1", "0"])
    test(`one token, bf16, FASTGEN_GEMV_PIPE=${pipe}: narrow, wide and gated against a double-precision GEMV`, () => {
      const r = runEmu("gemv_emu", ["libfastgen/src/cuda/gemm.cu", "libfastgen/src/cuda/gemv_small.cu"], "gemvHarness.cpp", { FASTGEN_GEMV_PIPE: pipe });
      expect(allPassed(r.out)).toBe(true);
      expect(r.code).toBe(0);
    }, 240_000);
});
