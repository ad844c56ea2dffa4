// Decode attention's CUDA source run on the CPU (emu.h's model of CUDA, built by build.ts):
// attnHarness.cpp runs each case two ways -- the RoPE kernel then attention with the combine
// kernel; the RoPE kernel then attention with the key splits merged by each tile's last CTA
// (attention run twice: the split counters must return to zero) -- and asks for the same output
// and K/V bits from both (GQA, MHA, qk-norm,
// biases, partial and interleaved rotary, several tokens a tile, an FP8 cache, head_dim 16-256,
// a sliding window, softcap, forced and automatic splits). No GPU needed; skips without g++ or the
// CUDA headers.
import { describe, expect, test } from "bun:test";
import { allPassed, canBuildEmu, runEmu } from "./build";

describe.skipIf(!canBuildEmu)("decode attention on the CPU model of CUDA", () => {
  test("the in-kernel split merge gives the combine kernel's bits", () => {
    const r = runEmu("attn_emu", ["libfastgen/src/cuda/attention.cu", "libfastgen/src/cuda/rope.cu"], "attnHarness.cpp");
    expect(allPassed(r.out)).toBe(true);
    expect(r.code).toBe(0);
  }, 240_000);
});
