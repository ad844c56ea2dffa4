// Decode attention's CUDA source run on the CPU (emu.h's model of CUDA, built by build.ts):
// attnHarness.cpp runs each case two ways -- the RoPE kernel then attention with the combine
// kernel; the RoPE kernel then attention with the key splits merged by each tile's last CTA
// (attention run twice: the split counters must return to zero) -- and asks for the same output
// and K/V bits from both (GQA, MHA, qk-norm,
// biases, partial and interleaved rotary, several tokens a tile, an FP8 cache, head_dim 16-256,
// a sliding window, softcap, forced and automatic splits). Under FASTGEN_ATTN_KV_EARLY=1 (the
// first K/V tile's past keys requested before pdl_wait, the rest after) each case's output must
// hash as without it. No GPU needed; skips without g++ or the CUDA headers.
import { describe, expect, test } from "bun:test";
import { allPassed, canBuildEmu, runEmu } from "./build";

describe.skipIf(!canBuildEmu)("decode attention on the CPU model of CUDA", () => {
  const kernels = ["libfastgen/src/cuda/attention.cu", "libfastgen/src/cuda/rope.cu"];
  const hashes = (out: string) => out.split("\n").filter((l) => l.startsWith("ok ")).map((l) => l.replace(/^ok /, ""));
  let plain = "";
  test("the in-kernel split merge gives the combine kernel's bits", () => {
    const r = runEmu("attn_emu", kernels, "attnHarness.cpp");
    plain = r.out;
    expect(allPassed(r.out)).toBe(true);
    expect(r.code).toBe(0);
  }, 240_000);

  test("FASTGEN_ATTN_KV_EARLY=1 (past keys of the first tile loaded before the wait): the same bits", () => {
    const r = runEmu("attn_emu", kernels, "attnHarness.cpp", { FASTGEN_ATTN_KV_EARLY: "1" }, "early: ");
    expect(allPassed(r.out)).toBe(true);
    expect(hashes(r.out).length).toBeGreaterThan(5);
    expect(hashes(r.out)).toEqual(hashes(plain));
  }, 240_000);
});
