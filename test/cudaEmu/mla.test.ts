// The latent attention kernels' CUDA source run on the CPU (emu.h's model of CUDA, built by
// build.ts) against a double-precision reference (mlaHarness.cpp: test/gpu/mla.test.ts's cases,
// odd widths and FP8 caches), for the tensor-core kernel at 16 and 64 rows a CTA. No GPU needed;
// skips without g++ or the CUDA headers. (FASTGEN_MLA_KERNEL=fma runs the fp32 kernel the same way.)
import { describe, expect, test } from "bun:test";
import { buildEmu, cudaInclude } from "./build";

const canBuild = process.arch === "x64" && cudaInclude() !== null && Bun.which("g++") !== null;  // emu.cpp switches x86-64 registers

describe.skipIf(!canBuild)("MLA kernels on the CPU model of CUDA", () => {
  test("the tensor-core kernel matches the reference at 16 and 64 rows a CTA", async () => {
    const bin = buildEmu("mla_emu", ["libfastgen/src/cuda/attention_mla.cu", "libfastgen/src/cuda/attention_mla_mma.cu"], "mlaHarness.cpp")!;
    const runs = ["mma16", "mma64"].map(async (kernel) => {
      const p = Bun.spawn([bin], { env: { ...process.env, FASTGEN_MLA_KERNEL: kernel }, stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      for (const line of out.trim().split("\n")) console.log(`[${kernel}] ${line}`);
      return { kernel, code, out: out + err };
    });
    for (const r of await Promise.all(runs)) {
      expect(r.out).not.toContain("FAIL");
      expect(r.out).toMatch(/(\d+) of \1 cases passed/);
      expect(r.code).toBe(0);
    }
  }, 240_000);
});
