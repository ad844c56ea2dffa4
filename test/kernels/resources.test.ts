// The decode chain's kernels compile to the registers, shared memory, stack and spills recorded in
// test/kernels/resources.json (test/kernels/resources.ts says why). Skipped without nvcc, or with
// another nvcc release than the one that wrote the file (its code generation differs).
import { describe, expect, test } from "bun:test";
import { differences, findNvcc, measure, nvccVersion, readSnapshot } from "./resources";

const nvcc = findNvcc();
const want = readSnapshot();
const sameNvcc = !!nvcc && !!want && nvccVersion(nvcc) === want.nvcc;

describe.skipIf(!sameNvcc)("decode kernels' ptxas resources (sm_90a)", () => {
  test("match test/kernels/resources.json", async () => {
    const got = await measure(nvcc!);
    const diff = differences(want!, got);
    if (diff.length)
      console.error(`ptxas resources changed:\n${diff.join("\n")}\nIf meant (and timed on a device), record them: bun test/kernels/resources.ts --write`);
    expect(diff).toEqual([]);
  }, 240_000);
});

describe("the comparison", () => {
  const k = { regs: 60, smem: 0, stack: 0, spills: 0 };
  const snap = (files: Record<string, Record<string, typeof k>>) => ({ nvcc: "x", arch: "sm_90a", files });
  test("names a kernel whose registers moved, and kernels that came or went", () => {
    const a = snap({ "gemm.cu": { g2: k, old: k } });
    const b = snap({ "gemm.cu": { g2: { ...k, regs: 48 }, fresh: k } });
    expect(differences(a, b)).toEqual([
      "gemm.cu: g2: 60 regs, 0 B smem, 0 B stack, 0 B spilled -> 48 regs, 0 B smem, 0 B stack, 0 B spilled",
      "gemm.cu: kernel gone old (was 60 regs, 0 B smem, 0 B stack, 0 B spilled)",
      "gemm.cu: new kernel fresh: 60 regs, 0 B smem, 0 B stack, 0 B spilled",
    ]);
    expect(differences(a, a)).toEqual([]);
  });
});
