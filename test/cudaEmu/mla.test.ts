// The latent attention kernels' CUDA source run on the CPU (emu.h's model of CUDA, built by
// build.ts) against a double-precision reference (mlaHarness.cpp: test/gpu/mla.test.ts's cases,
// odd widths and FP8 caches), for the tensor-core kernel at 16 and 64 rows a CTA. No GPU needed;
// skips without g++ or the CUDA headers. (FASTGEN_MLA_KERNEL=fma runs the fp32 kernel the same way.)
import { describe, expect, test } from "bun:test";
import { allPassed, canBuildEmu, runEmu } from "./build";

describe.skipIf(!canBuildEmu)("MLA kernels on the CPU model of CUDA", () => {
  test("the tensor-core kernel matches the reference at 16 and 64 rows a CTA", () => {
    for (const kernel of ["mma16", "mma64"]) {
      const r = runEmu("mla_emu", ["libfastgen/src/cuda/attention_mla.cu", "libfastgen/src/cuda/attention_mla_mma.cu"], "mlaHarness.cpp",
        { FASTGEN_MLA_KERNEL: kernel }, `[${kernel}] `);
      expect(allPassed(r.out)).toBe(true);
      expect(r.code).toBe(0);
    }
  }, 240_000);
});
