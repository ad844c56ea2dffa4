/**
 * `fastgen serve` flags for the gRPC port and replicas, and their checks. With --replicas or
 * --replica the engine is a load balancer over replica processes; otherwise it runs in-process.
 */
import type { ReplicaFrontEndOptions } from "../lb/frontEnd";
import type { RoutingPolicy } from "../lb/router";
import { ROUTING_POLICIES } from "../lb/router";
import { UsageError, intFlag } from "../ops/engineFlags";

export const REPLICA_FLAG_SPEC = {
  "grpc-port": { type: "string" },
  replicas: { type: "string" },
  "gpus-per-replica": { type: "string" },
  replica: { type: "string", multiple: true },
  "lb-policy": { type: "string" },
} as const;

export const REPLICA_FLAG_HELP = `gRPC and replicas:
  --grpc-port N          also serve gRPC on port N, beside HTTP (0 = any free port; default: no
                         gRPC, so a second server on one machine needs only its own --port)
  --replicas N           run N engine replicas, each its own "fastgen replica" process, behind a
                         load balancer (default: one engine in this process)
  --gpus-per-replica K   GPUs per replica, given as CUDA_VISIBLE_DEVICES (default 1); where no GPU
                         is visible the replicas run on the CPU and share its cores
  --replica HOST:PORT    also balance over a replica started elsewhere with "fastgen replica"
                         (repeatable; it must serve the model given by --model)
  --lb-policy P          ${ROUTING_POLICIES.join(" | ")}: cache-aware sends a prompt where
                         the longest prefix of it is cached, weighed against outstanding tokens
                         (default cache-aware; least-outstanding with --no-enable-prefix-caching)`;

/** What the replica flags ask for. */
export interface ReplicaFlags {
  /** undefined: no gRPC front end. */
  grpcPort: number | undefined;
  frontEnd: Omit<ReplicaFrontEndOptions, "modelDir" | "engineOptions">;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Checks a --replica value (host:port, IPv6 hosts in brackets). */
export function checkReplicaAddress(value: string): string {
  const m = value.match(HOST_PORT);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new UsageError(`--replica must be HOST:PORT (e.g. gpu1:50051), got "${value}"`);
  return value;
}

/** Parses the replica flags of parsed `values`. */
export function replicaFlagsFrom(values: Record<string, unknown>): ReplicaFlags {
  const s = (k: string) => values[k] as string | undefined;
  const grpcPort = intFlag("grpc-port", s("grpc-port"), 0);
  if (grpcPort !== undefined && grpcPort > 65535) throw new UsageError(`--grpc-port must be at most 65535, got ${grpcPort}`);
  const replicas = intFlag("replicas", s("replicas"));
  const gpusPerReplica = intFlag("gpus-per-replica", s("gpus-per-replica"));
  if (gpusPerReplica !== undefined && replicas === undefined) throw new UsageError("--gpus-per-replica needs --replicas N");
  const remote = ((values.replica as string[] | undefined) ?? []).map(checkReplicaAddress);
  const policy = s("lb-policy");
  if (policy !== undefined && !ROUTING_POLICIES.includes(policy as RoutingPolicy))
    throw new UsageError(`--lb-policy must be one of ${ROUTING_POLICIES.join(", ")}, got "${policy}"`);
  return { grpcPort, frontEnd: { replicas, gpusPerReplica, remote, policy: policy as RoutingPolicy | undefined } };
}
