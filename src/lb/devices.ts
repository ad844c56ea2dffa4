/**
 * Which devices each local replica gets: with GPUs, replica i gets the i-th group of
 * `gpusPerReplica` visible devices as its CUDA_VISIBLE_DEVICES; without any, replicas run on the
 * CPU backend and share the cores between them.
 */
import { availableParallelism } from "node:os";
import { cudaDeviceCount } from "../native";

/** One local replica's placement. */
export interface ReplicaPlacement {
  backend: "cpu" | "cuda";
  /** CUDA_VISIBLE_DEVICES for it (GPU replicas only). */
  cudaVisibleDevices?: string;
  /** CPU backend threads (CPU replicas only, when the caller gave none). */
  threads?: number;
}

/** The devices this process may use: $CUDA_VISIBLE_DEVICES when set, else 0..count-1. */
export function visibleGpus(): string[] {
  let count = 0;
  try {
    count = cudaDeviceCount();
  } catch {
    return []; // no libfastgen CUDA support here: CPU only
  }
  const env = process.env.CUDA_VISIBLE_DEVICES;
  const listed = env === undefined ? null : env.split(",").map((s) => s.trim()).filter((s) => s !== "");
  return (listed ?? Array.from({ length: count }, (_, i) => String(i))).slice(0, count);
}

/** Placement of `replicas` replicas; throws when they need more GPUs than are visible. */
export function placeReplicas(
  replicas: number,
  opts: { gpusPerReplica?: number; backend?: "cpu" | "cuda"; threads?: number; gpus?: string[] },
): ReplicaPlacement[] {
  const gpus = opts.backend === "cpu" ? [] : (opts.gpus ?? visibleGpus());
  if (gpus.length === 0) {
    if (opts.backend === "cuda") throw new Error("--backend cuda: no CUDA device is visible");
    const threads = opts.threads ?? Math.max(1, Math.floor(availableParallelism() / replicas));
    return Array.from({ length: replicas }, () => ({ backend: "cpu", threads }));
  }
  const per = opts.gpusPerReplica ?? 1;
  if (replicas * per > gpus.length)
    throw new Error(`${replicas} replicas x ${per} GPUs need ${replicas * per} GPUs, but ${gpus.length} are visible (${gpus.join(",")})`);
  return Array.from({ length: replicas }, (_, i) => ({ backend: "cuda", cudaVisibleDevices: gpus.slice(i * per, (i + 1) * per).join(",") }));
}
