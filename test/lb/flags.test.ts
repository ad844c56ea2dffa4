/**
 * Command-line side of replicas: `fastgen replica` help and flag checks, the serve flags for gRPC
 * and replicas, device placement (CUDA_VISIBLE_DEVICES per replica, CPU fallback sharing cores),
 * the engine flags replicas are started with, and the command that spawns them.
 */
import { describe, expect, spyOn, test } from "bun:test";
import { UsageError } from "../../src/ops/engineFlags";
import { REPLICA_HELP, replicaCommand } from "../../src/cli/replica";
import { replicaFlagsFrom } from "../../src/cli/replicaFlags";
import { SERVE_HELP } from "../../src/cli/serve";
import { placeReplicas } from "../../src/lb/devices";
import { engineArgs } from "../../src/lb/frontEnd";
import { fastgenCommand } from "../../src/lb/replicaProcess";

describe("fastgen replica", () => {
  test("--help names its flags", async () => {
    const log = spyOn(console, "log").mockImplementation(() => {});
    await replicaCommand(["--help"]);
    expect(log).toHaveBeenCalledWith(REPLICA_HELP);
    log.mockRestore();
    for (const flag of ["--model", "--host", "--port", "--max-batch-tokens", "--backend"]) expect(REPLICA_HELP).toContain(flag);
  });

  test.each([[["--port", "x"]], [["--port", "70000"]], [["--policy", "fifo"]]])("%j is a usage error", async (argv) => {
    expect(await replicaCommand(argv).catch((e) => e)).toBeInstanceOf(UsageError);
  });
});

describe("tensor-parallel flags", () => {
  test("--tensor-parallel and --collective-timeout become engine options and replica flags", async () => {
    const { engineOptionsFromFlags, ENGINE_FLAG_HELP } = await import("../../src/ops/engineFlags");
    expect(engineOptionsFromFlags({ "tensor-parallel": "2", "collective-timeout": "30" })).toEqual({ tensorParallel: 2, collectiveTimeout: 30 });
    expect(engineArgs({ tensorParallel: 2, collectiveTimeout: 30 })).toEqual(["--tensor-parallel", "2", "--collective-timeout", "30"]);
    for (const flag of ["--tensor-parallel", "--collective-timeout"]) expect(ENGINE_FLAG_HELP).toContain(flag);
    expect(() => engineOptionsFromFlags({ "tensor-parallel": "0" })).toThrow("--tensor-parallel");
    expect(() => engineOptionsFromFlags({ "collective-timeout": "-1" })).toThrow("--collective-timeout");
  });

  test("--enable-prefix-caching / --no-enable-prefix-caching (vLLM's names) reach the engine and the replicas", async () => {
    const { engineOptionsFromFlags, ENGINE_FLAG_HELP } = await import("../../src/ops/engineFlags");
    expect(engineOptionsFromFlags({})).toEqual({});
    expect(engineOptionsFromFlags({ "no-enable-prefix-caching": true })).toEqual({ enablePrefixCaching: false });
    expect(engineOptionsFromFlags({ "enable-prefix-caching": true })).toEqual({ enablePrefixCaching: true });
    expect(() => engineOptionsFromFlags({ "enable-prefix-caching": true, "no-enable-prefix-caching": true })).toThrow(UsageError);
    expect(engineArgs({ enablePrefixCaching: false })).toEqual(["--no-enable-prefix-caching"]);
    expect(engineArgs({ enablePrefixCaching: true })).toEqual(["--enable-prefix-caching"]);
    expect(ENGINE_FLAG_HELP).toContain("--no-enable-prefix-caching");
  });

  test("a model with tensor parallelism on a CPU-only machine is a clear error, not a CPU fallback", async () => {
    const { EngineCore } = await import("../../src/engine/engineCore");
    const { join } = await import("node:path");
    const dir = join(import.meta.dir, "..", "fixtures", "llama-gqa");
    const err = await EngineCore.load(dir, { tensorParallel: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err.message)).toMatch(/CUDA|device|tensor_parallel/);
  });
});

describe("serve flags for gRPC and replicas", () => {
  test("help lists them", () => {
    for (const flag of ["--grpc-port", "--replicas", "--gpus-per-replica", "--replica HOST:PORT", "--lb-policy"]) expect(SERVE_HELP).toContain(flag);
  });

  test("defaults: gRPC on 50050, no replicas", () => {
    expect(replicaFlagsFrom({})).toEqual({ grpcPort: undefined, frontEnd: { replicas: undefined, gpusPerReplica: undefined, remote: [], policy: undefined } });
  });

  test("parses replicas, remote addresses and the policy", () => {
    const f = replicaFlagsFrom({ "grpc-port": "0", replicas: "2", "gpus-per-replica": "2", replica: ["gpu1:50051", "[::1]:7"], "lb-policy": "round-robin" });
    expect(f).toEqual({ grpcPort: 0, frontEnd: { replicas: 2, gpusPerReplica: 2, remote: ["gpu1:50051", "[::1]:7"], policy: "round-robin" } });
  });

  test.each([
    [{ "grpc-port": "70000" }, "--grpc-port"],
    [{ replicas: "0" }, "--replicas"],
    [{ "gpus-per-replica": "1" }, "--gpus-per-replica"],
    [{ replica: ["gpu1"] }, "--replica"],
    [{ replica: ["gpu1:0"] }, "--replica"],
    [{ replica: ["http://gpu1:50051"] }, "--replica"],
    [{ "lb-policy": "random" }, "--lb-policy"],
  ])("%j is a usage error naming %s", (values, flag) => {
    let err: unknown;
    try {
      replicaFlagsFrom(values);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(flag);
  });
});

describe("placement", () => {
  const gpus = ["0", "1", "2", "3"];
  test("K GPUs per replica, in order, as CUDA_VISIBLE_DEVICES", () => {
    expect(placeReplicas(2, { gpusPerReplica: 2, gpus })).toEqual([
      { backend: "cuda", cudaVisibleDevices: "0,1" },
      { backend: "cuda", cudaVisibleDevices: "2,3" },
    ]);
    expect(placeReplicas(3, { gpus }).map((p) => p.cudaVisibleDevices)).toEqual(["0", "1", "2"]);
  });

  test("more GPUs than visible is an error naming them", () => {
    expect(() => placeReplicas(3, { gpusPerReplica: 2, gpus })).toThrow("need 6 GPUs, but 4 are visible (0,1,2,3)");
  });

  test("without GPUs (or with --backend cpu) replicas run on the CPU and share the cores", () => {
    const cpu = placeReplicas(2, { gpus: [] });
    expect(cpu.every((p) => p.backend === "cpu" && p.cudaVisibleDevices === undefined && p.threads! >= 1)).toBe(true);
    expect(placeReplicas(2, { gpus, backend: "cpu", threads: 3 })).toEqual([{ backend: "cpu", threads: 3 }, { backend: "cpu", threads: 3 }]);
    expect(() => placeReplicas(1, { gpus: [], backend: "cuda" })).toThrow("no CUDA device");
  });
});

describe("spawning", () => {
  test("engine options become replica flags", () => {
    expect(engineArgs({ maxBatchTokens: 256, policy: "orca", backend: "cpu", threads: 2, kvBlocks: undefined })).toEqual([
      "--max-batch-tokens", "256", "--policy", "orca", "--backend", "cpu", "--threads", "2",
    ]);
    expect(() => engineArgs({ memoryFraction: 0.5 })).toThrow("memoryFraction");
  });

  test("from a checkout, replicas run as bun src/cli.ts", () => {
    const cmd = fastgenCommand();
    expect(cmd[0]).toBe(process.execPath);
    expect(cmd[1]).toEndWith("src/cli.ts");
  });
});
