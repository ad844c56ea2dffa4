// The decode GEMVs' CUDA source run on the CPU (emu.h's model of CUDA, built by build.ts), each
// against a double-precision GEMM of the same values; no GPU needed, skipped without g++ or the
// CUDA headers:
//   gemvSmallHarness.cpp     the small-M tensor-core GEMV on bf16 weights at 1-16 tokens, plain
//                            (bf16 / fp32 / accumulated) and gated, tiles and k steps partly filled;
//   fp8GemvHarness.cpp       its FP8 E4M3 loaders (per-row and per-K-block scales) against the
//                            dequantized weights, with 16-byte loads (the default) and 8-byte ones,
//                            and the CUDA-core FP8 GEMV (an H200's one-token FP8 path) at 1-8 tokens;
//   gemvHarness.cpp          the one-token bf16 GEMVs of gemm.cu (narrow, pipelined or not; wide;
//                            gated) at the 7B shapes and odd ones, and narrow outputs through the
//                            other kernels FASTGEN_GEMV_NARROW can pick;
//   ropeGemvHarness.cpp      the qkv GEMV with RoPE and the K/V write in its epilogue (rope.cu
//                            qkv_gemv_rope, FASTGEN_QKV_ROPE) against the GEMV then the RoPE
//                            kernel, bit for bit;
//   ropeSmallHarness.cpp     the same in the small-M kernel's epilogue (1-16 tokens of several
//                            sequences, bf16 and FP8 weights, a deferred norm read or not).
import { describe, expect, test } from "bun:test";
import { allPassed, canBuildEmu, runEmu } from "./build";

describe.skipIf(!canBuildEmu)("the decode GEMVs on the CPU model of CUDA", () => {
  // FASTGEN_GEMV_PERSIST=3: three blocks loop over every row tile (the next tile's weights
  // requested before this one's epilogue; the deferred norm's partial sums written per tile).
  // FASTGEN_GEMV_STAGED=1: the weights through shared memory by cp.async (the emulator lands the
  // copies at once in even blocks and only at the wait in odd ones).
  for (const env of [{}, { FASTGEN_GEMV_PERSIST: "3" }, { FASTGEN_GEMV_PERSIST: "3", FASTGEN_GEMV_STAGED: "1" }] as Record<string, string>[])
    test(`small-M, bf16 weights${env.FASTGEN_GEMV_PERSIST ? ", 3 blocks looping over the row tiles" : ""}${env.FASTGEN_GEMV_STAGED ? ", staged" : ""}: 1-16 tokens, plain and gated, against a double-precision GEMM`, () => {
      const r = runEmu("gemv_small_emu", ["libfastgen/src/cuda/gemv_small.cu"], "gemvSmallHarness.cpp", env);
      expect(allPassed(r.out)).toBe(true);
      expect(r.code).toBe(0);
    }, 240_000);

  const fp8 = ["libfastgen/src/cuda/fp8_gemv.cu", "libfastgen/src/cuda/fp8_gemv_small.cu", "libfastgen/src/cuda/gemv_small.cu"];
  for (const [what, env] of [
    ["small-M, FP8 loaders, 16-byte loads", { FASTGEN_FP8_SMALL_KDEPTH: "16" }],
    ["small-M, FP8 loaders, 8-byte loads", { FASTGEN_FP8_SMALL_KDEPTH: "8" }],
    ["small-M, FP8 loaders, 3 blocks looping over the row tiles", { FASTGEN_FP8_SMALL_KDEPTH: "16", FASTGEN_GEMV_PERSIST: "3" }],
    ["small-M, FP8 loaders, weights staged through shared memory", { FASTGEN_FP8_SMALL_KDEPTH: "16", FASTGEN_GEMV_PERSIST: "3", FASTGEN_GEMV_STAGED: "1" }],
    ["small-M, FP8 loaders, 8-byte loads staged", { FASTGEN_FP8_SMALL_KDEPTH: "8", FASTGEN_GEMV_STAGED: "1" }],
    ["the CUDA-core FP8 GEMV", { FP8_EMU_KERNEL: "gemv" }],
  ] as const)
    test(`${what}: row and K-block scales, plain and gated, against the dequantized GEMM`, () => {
      const r = runEmu("fp8_gemv_emu", fp8, "fp8GemvHarness.cpp", env);
      expect(allPassed(r.out)).toBe(true);
      expect(r.code).toBe(0);
    }, 240_000);

  // FASTGEN_GEMV_NARROW (an A/B knob): narrow outputs through the two-row or the small-M kernel.
  // FASTGEN_NORM_DEFER=1: the deferred-norm cases run (unset, they report "not taken").
  const oneToken: Record<string, string>[] = [{ FASTGEN_GEMV_PIPE: "1" }, { FASTGEN_GEMV_PIPE: "0" }, { FASTGEN_GEMV_NARROW: "1" }, { FASTGEN_GEMV_NARROW: "2" }, { FASTGEN_NORM_DEFER: "1" }];
  for (const env of oneToken)
    test(`one token, bf16, ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join()}: narrow, wide and gated against a double-precision GEMV`, () => {
      const r = runEmu("gemv_emu", ["libfastgen/src/cuda/gemm.cu", "libfastgen/src/cuda/gemv_small.cu"], "gemvHarness.cpp", env);
      expect(allPassed(r.out)).toBe(true);
      if (env.FASTGEN_NORM_DEFER) expect(r.out.match(/^ok deferred RMSNorm.*worst error/gm)?.length).toBe(2);
      expect(r.code).toBe(0);
    }, 240_000);

  // The small-M kernel with RoPE and the K/V write in its epilogue (decode at 2-16 tokens, FP8
  // at its token counts) against that kernel then the RoPE kernel; 3 blocks for every row tile too.
  const ropeSmall = ["libfastgen/src/cuda/gemv_small.cu", "libfastgen/src/cuda/fp8_gemv.cu", "libfastgen/src/cuda/fp8_gemv_small.cu", "libfastgen/src/cuda/rope.cu"];
  for (const env of [{ FASTGEN_QKV_ROPE: "1" }, { FASTGEN_QKV_ROPE: "2", FASTGEN_GEMV_PERSIST: "3" }, { FASTGEN_QKV_ROPE: "1", FASTGEN_GEMV_STAGED: "1" }] as Record<string, string>[])
    test(`1-16 tokens, the small-M qkv GEMV with RoPE (${Object.entries(env).map(([k, v]) => `${k}=${v}`).join()}), bf16 and FP8 weights: the GEMV + RoPE kernel's bits`, () => {
      const r = runEmu("rope_small_emu", ropeSmall, "ropeSmallHarness.cpp", env);
      expect(allPassed(r.out)).toBe(true);
      expect(r.code).toBe(0);
    }, 240_000);

  for (const mode of ["1", "2"])
    test(`one token, the qkv GEMV with RoPE (FASTGEN_QKV_ROPE=${mode}): the GEMV + RoPE kernel's bits`, () => {
      const r = runEmu("rope_gemv_emu", ["libfastgen/src/cuda/gemm.cu", "libfastgen/src/cuda/gemv_small.cu", "libfastgen/src/cuda/rope.cu"],
        "ropeGemvHarness.cpp", { FASTGEN_QKV_ROPE: mode, FASTGEN_NORM_DEFER: "1" });
      expect(allPassed(r.out)).toBe(true);
      expect(r.code).toBe(0);
    }, 240_000);
});
