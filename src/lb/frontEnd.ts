/**
 * A front end over replicas: spawns the local `fastgen replica` processes (one device set each),
 * dials the remote ones, learns the context length they serve, and returns the LoadBalancer over
 * all of them. The tokenizer is loaded here from the model directory (prompts travel as token ids),
 * so every replica must serve that same model; shutting the balancer down stops the processes.
 */
import { resolve } from "node:path";
import type { EngineOptions } from "../engine/options";
import { ENGINE_FLAG_SPEC } from "../ops/engineFlags";
import { speculativeJson } from "../engine/speculative/config";
import type { SpeculativeConfig } from "../engine/speculative/config";
import { RemoteEngine } from "../grpc/remoteEngine";
import { modelNameOf } from "../model/modelName";
import { Tokenizer } from "../tokenizer/tokenizer";
import { placeReplicas } from "./devices";
import type { HealthCheckOptions } from "./healthChecker";
import { LoadBalancer } from "./loadBalancer";
import type { ReplicaProcessOptions } from "./replicaProcess";
import { ReplicaProcess } from "./replicaProcess";
import type { RoutingPolicy } from "./router";
import { defaultRoutingPolicy } from "./router";

/** Options of {@link startReplicaFrontEnd}. */
export interface ReplicaFrontEndOptions {
  /** The model every replica serves (local replicas load it; the front end loads its tokenizer). */
  modelDir: string;
  engineOptions?: Partial<EngineOptions>;
  /** Local replica processes to spawn. */
  replicas?: number;
  /** GPUs per local replica (default 1 where GPUs are visible). */
  gpusPerReplica?: number;
  /** host:port of replicas started elsewhere with `fastgen replica`. */
  remote?: string[];
  /** Default: cache-aware, or least-outstanding with prefix caching off (defaultRoutingPolicy). */
  policy?: RoutingPolicy;
  health?: Pick<HealthCheckOptions, "intervalMs" | "timeoutMs" | "evictAfter">;
  /** Deadline of the first probe of remote replicas (default 5000 ms). */
  connectTimeoutMs?: number;
  log?: (message: string) => void;
  /** Where local replicas' output lines go (default stderr). */
  output?: ReplicaProcessOptions["output"];
  /** The deployment's API key: local replicas require it, and it is sent to every replica. */
  apiKey?: string;
}

/** A running front end: the balancer (an EngineClient) and the local replica processes. */
export interface ReplicaFrontEnd {
  balancer: LoadBalancer;
  processes: ReplicaProcess[];
}

/** `fastgen replica` flags for engine options (maxBatchTokens -> --max-batch-tokens). */
export function engineArgs(options: Partial<EngineOptions>): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    if (key === "speculative") {
      args.push("--speculative-config", speculativeJson(value as SpeculativeConfig));
      continue;
    }
    const kebab = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    // A boolean option is a flag pair: --x when true, --no-x when false.
    const flag = value === false ? `no-${kebab}` : kebab;
    if (!(flag in ENGINE_FLAG_SPEC)) throw new Error(`engine option ${key} has no replica flag (--${flag})`);
    if (typeof value === "boolean") args.push(`--${flag}`);
    else args.push(`--${flag}`, String(value));
  }
  return args;
}

/** Spawns and dials the replicas, checks they serve the model, and starts balancing. */
export async function startReplicaFrontEnd(o: ReplicaFrontEndOptions): Promise<ReplicaFrontEnd> {
  const modelDir = resolve(o.modelDir);
  const tokenizer = Tokenizer.fromDir(modelDir);
  const modelName = modelNameOf(modelDir); // the name a replica's engine reports
  const log = o.log ?? ((m: string) => console.error(`fastgen: ${m}`));
  const { threads, backend, ...rest } = o.engineOptions ?? {};
  const tp = rest.tensorParallel ?? 1;
  if (o.gpusPerReplica !== undefined && o.gpusPerReplica < tp)
    throw new Error(`--tensor-parallel ${tp} needs --gpus-per-replica >= ${tp}, got ${o.gpusPerReplica}`);
  const gpusPerReplica = o.gpusPerReplica ?? (tp > 1 ? tp : undefined);
  const placements = placeReplicas(o.replicas ?? 0, { gpusPerReplica, backend, threads });
  const processes = placements.map((p, i) => {
    const args = ["--model", modelDir, ...engineArgs({ ...rest, backend: p.backend, threads: p.threads })];
    const env: Record<string, string> = {};
    if (p.cudaVisibleDevices !== undefined) env.CUDA_VISIBLE_DEVICES = p.cudaVisibleDevices;
    env.FASTGEN_API_KEY = o.apiKey ?? ""; // by environment (arguments are visible to every user); "" = none
    return new ReplicaProcess({ name: `replica ${i}`, args, env, log, output: o.output });
  });
  const stopAll = () => Promise.all(processes.map((p) => p.stop())).then(() => {});
  let engines: RemoteEngine[] = [];
  try {
    await Promise.all(processes.map((p) => p.start()));
    engines = [...processes.map((p) => p.address), ...(o.remote ?? [])].map((a) => new RemoteEngine(a, tokenizer, o.apiKey));
    const answers = await Promise.all(engines.map((e) => e.probe(o.connectTimeoutMs ?? 5000).catch((err: Error) => err)));
    let maxModelLen = Infinity;
    answers.forEach((a, i) => {
      const address = engines[i]!.address;
      if (a instanceof Error) return log(`${a.message}; it will join once it answers`);
      if (a.modelName !== modelName)
        throw new Error(`replica ${address} serves model "${a.modelName}", but this front end loaded "${modelName}" (${modelDir}): pass --model`);
      maxModelLen = Math.min(maxModelLen, a.maxModelLen);
    });
    if (maxModelLen === Infinity) throw new Error(`no replica answered (${engines.map((e) => e.address).join(", ")})`);
    const balancer = new LoadBalancer(engines, { modelName, maxModelLen, tokenizer, policy: o.policy ?? defaultRoutingPolicy(o.engineOptions?.enablePrefixCaching), log, ...o.health, onShutdown: stopAll });
    await balancer.start();
    return { balancer, processes };
  } catch (e) {
    await Promise.all(engines.map((engine) => engine.shutdown()));
    await stopAll();
    throw e;
  }
}
