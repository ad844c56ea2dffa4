/**
 * What ptxas gives the decode chain's CUDA kernels (sm_90a): registers, shared memory, stack and
 * spills per kernel, compiled here with the nvcc the build uses. A change nobody meant shows up
 * here before it shows up on a GPU: 930d252 (a dedupe of load8) made ptxas stop hoisting the
 * one-token GEMVs' x loads, gemv2_kernel went from 60 to 48 registers, and H100 decode at batch 1
 * ran 2.5-3% slower for seven hours (bench/results/device-wave16-h100.md).
 *
 *   bun test/kernels/resources.ts --write     records test/kernels/resources.json (after a change
 *                                             that is meant, and measured on a device)
 * test/kernels/resources.test.ts compares against that file.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface KernelRes { regs: number; smem: number; stack: number; spills: number }
export interface Snapshot { nvcc: string; arch: string; files: Record<string, Record<string, KernelRes>> }

const root = join(import.meta.dir, "../..");
export const snapshotPath = join(import.meta.dir, "resources.json");
export const ARCH = "sm_90a";
// The kernels a decode step runs (one-token and small-M GEMVs, bf16 and FP8; RoPE; norms; attention).
export const FILES = ["gemm.cu", "gemv_small.cu", "fp8_gemv.cu", "fp8_gemv_small.cu", "rope.cu", "norm.cu", "attention.cu"];

/** nvcc as build.zig finds it: $CUDA_HOME, /usr/local/cuda, then PATH. */
export function findNvcc(): string | null {
  for (const r of [process.env.CUDA_HOME, "/usr/local/cuda"]) if (r && existsSync(`${r}/bin/nvcc`)) return `${r}/bin/nvcc`;
  return Bun.which("nvcc");
}

export function nvccVersion(nvcc: string): string {
  const out = Bun.spawnSync([nvcc, "--version"]).stdout.toString();
  return /release [\d.]+, V[\d.]+/.exec(out)?.[0] ?? out.trim().split("\n").pop() ?? "";
}

// The anonymous namespace's mangled name carries a hash of the file; kernels are named without it.
const plainName = (mangled: string) => mangled.replace(/\d+_GLOBAL__N__[0-9a-f]+_\d+_\w+?_cu_[0-9a-f]{8}/, "{anon}");

/** ptxas's report of one .cu file: kernel name -> resources. */
export async function compileFile(nvcc: string, file: string): Promise<Record<string, KernelRes>> {
  const src = join(root, "libfastgen/src/cuda", file);
  const p = Bun.spawn([nvcc, "-cubin", "-O3", "-std=c++17", "--expt-relaxed-constexpr", `-I${root}/libfastgen/include`,
    `-I${root}/libfastgen/src`, `-arch=${ARCH}`, "--resource-usage", src, "-o", "/dev/null"], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  if ((await p.exited) !== 0) throw new Error(`nvcc ${file} failed:\n${err.slice(-2000)}`);
  const kernels: Record<string, KernelRes> = {};
  let name = "", stack = 0, spills = 0;
  for (const line of (out + err).split("\n")) {
    let m = /Compiling entry function '([^']+)'/.exec(line);
    if (m) { name = plainName(m[1]!); stack = 0; spills = 0; continue; }
    m = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (m) { stack = +m[1]!; spills = +m[2]! + +m[3]!; continue; }
    m = /Used (\d+) registers/.exec(line);
    if (m && name) {
      const smem = /(\d+) bytes smem/.exec(line);
      kernels[name] = { regs: +m[1]!, smem: smem ? +smem[1]! : 0, stack, spills };
      name = "";
    }
  }
  if (Object.keys(kernels).length === 0) throw new Error(`nvcc ${file}: no kernels in ptxas's report`);
  return kernels;
}

/** Every file of FILES, two compiles at a time. */
export async function measure(nvcc: string): Promise<Snapshot> {
  const files: Record<string, Record<string, KernelRes>> = {};
  const queue = [...FILES];
  await Promise.all([0, 1].map(async () => {
    for (let f = queue.shift(); f; f = queue.shift()) files[f] = await compileFile(nvcc, f);
  }));
  const sorted: Snapshot["files"] = {};
  for (const f of FILES) sorted[f] = Object.fromEntries(Object.entries(files[f]!).sort(([a], [b]) => a.localeCompare(b)));
  return { nvcc: nvccVersion(nvcc), arch: ARCH, files: sorted };
}

/** Lines naming every kernel whose resources differ, or that came or went. */
export function differences(want: Snapshot, got: Snapshot): string[] {
  const out: string[] = [];
  const show = (r: KernelRes) => `${r.regs} regs, ${r.smem} B smem, ${r.stack} B stack, ${r.spills} B spilled`;
  for (const f of FILES) {
    const a = want.files[f] ?? {}, b = got.files[f] ?? {};
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const x = a[k], y = b[k];
      if (!x) out.push(`${f}: new kernel ${k}: ${show(y!)}`);
      else if (!y) out.push(`${f}: kernel gone ${k} (was ${show(x)})`);
      else if (x.regs !== y.regs || x.smem !== y.smem || x.stack !== y.stack || x.spills !== y.spills)
        out.push(`${f}: ${k}: ${show(x)} -> ${show(y)}`);
    }
  }
  return out;
}

export function readSnapshot(): Snapshot | null {
  return existsSync(snapshotPath) ? (JSON.parse(readFileSync(snapshotPath, "utf8")) as Snapshot) : null;
}

if (import.meta.main) {
  const nvcc = findNvcc();
  if (!nvcc) throw new Error("no nvcc ($CUDA_HOME, /usr/local/cuda or PATH)");
  const snap = await measure(nvcc);
  if (process.argv.includes("--write")) {
    // a kernel a line, so a diff of the file reads like the test's message
    const files = FILES.map((f) => `  ${JSON.stringify(f)}: {\n${Object.entries(snap.files[f]!).map(([k, r]) => `   ${JSON.stringify(k)}: ${JSON.stringify(r)}`).join(",\n")}\n  }`);
    writeFileSync(snapshotPath, `{\n "nvcc": ${JSON.stringify(snap.nvcc)},\n "arch": ${JSON.stringify(snap.arch)},\n "files": {\n${files.join(",\n")}\n }\n}\n`);
    console.log(`wrote ${snapshotPath}: ${Object.values(snap.files).reduce((n, k) => n + Object.keys(k).length, 0)} kernels, ${snap.nvcc}`);
  } else {
    const want = readSnapshot();
    console.log(want ? differences(want, snap).join("\n") || "no differences" : JSON.stringify(snap, null, 1));
  }
}
