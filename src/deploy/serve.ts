/**
 * serve() of the library API: a deployment in this process, in DeepSpeed-MII's spirit.
 *
 *   const h = await serve("Qwen/Qwen2.5-0.5B-Instruct", { replicas: 2, port: 50050, http: 8000 });
 *   const c = h.client();            // or client("localhost:50050") from anywhere
 *   await h.terminate();
 *
 * Without `replicas` or `remote` the engine runs in a supervised child process, restarted if it
 * crashes (or, with `engineInProcess`, in a Worker of this process); with them, each local replica
 * is a `fastgen replica` child process behind a load balancer. The gRPC service always
 * listens; the OpenAI-compatible HTTP API too when `http` is set. The model is a directory or a
 * hub id (model/hub.ts), resolved (and downloaded) here before anything starts.
 */
import type { StartEngineHooks } from "../engine/asyncEngine";
import { startEngine } from "../engine/asyncEngine";
import { startSupervisedEngine } from "../engine/supervisedEngine";
import type { EngineOptions } from "../engine/options";
import type { EngineClient } from "../engine/types";
import { FastGenClient } from "../grpc/client";
import { createGrpcServer } from "../grpc/grpcServer";
import { type HubOptions, resolveModels } from "../engine/resolveModels";
import type { FastGenServer } from "../server/serverTypes";
import { createServer } from "../server/httpServer";
import type { ReplicaFrontEndOptions } from "../lb/frontEnd";
import { startReplicaFrontEnd } from "../lb/frontEnd";
import type { ReplicaProcess } from "../lb/replicaProcess";

/** The gRPC port `fastgen serve` and serve() use by default (MII's). */
export const DEFAULT_GRPC_PORT = 50050;
/** The HTTP port of `http: true`. */
export const DEFAULT_HTTP_PORT = 8000;

/** Options of {@link serve}. */
export interface ServeOptions extends Omit<ReplicaFrontEndOptions, "modelDir" | "engineOptions"> {
  /** gRPC port (default 50050; 0 = any free port: read it from the handle's `address`). */
  port?: number;
  /** HTTP port for the OpenAI-compatible API (true = 8000, 0 = any free one); off when unset. */
  http?: number | boolean;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Engine options (of the in-process engine, or of every local replica). */
  engine?: Partial<EngineOptions>;
  /** The model name clients send (default: the hub id without its @revision, or the directory's name). */
  servedModelName?: string;
  /** Where a hub id is looked up and downloaded to (cache directory, environment, progress log). */
  hub?: HubOptions;
  /**
   * Run the engine in a Worker of this process instead of a supervised child process (no
   * replicas only): no spawn, but a native crash then takes this process down.
   */
  engineInProcess?: boolean;
}

/** A running deployment. */
export interface ServeHandle {
  /** host:port of the gRPC service. */
  address: string;
  /** Base URL of the HTTP API (".../v1" is appended by OpenAI clients), when it listens. */
  httpUrl: string | null;
  /** The engine both servers serve (a LoadBalancer over replicas, or the in-process engine). */
  engine: EngineClient;
  /** The local replica processes (empty without replicas). */
  processes: readonly ReplicaProcess[];
  /** A gRPC client of this deployment. */
  client(): FastGenClient;
  /** Closes the servers, the engine and the replica processes. */
  terminate(): Promise<void>;
}

/** Starts the engine a front end serves: replicas behind a balancer when asked for, else in-process. */
export async function startServingEngine(
  modelDir: string,
  options: Omit<ReplicaFrontEndOptions, "modelDir">,
  start: (modelDir: string, options: Partial<EngineOptions>, hooks: StartEngineHooks) => Promise<EngineClient> = startEngine,
  hooks: StartEngineHooks = {},
): Promise<{ engine: EngineClient; processes: ReplicaProcess[] }> {
  if ((options.replicas ?? 0) === 0 && (options.remote ?? []).length === 0)
    return { engine: await start(modelDir, options.engineOptions ?? {}, hooks), processes: [] };
  const { balancer, processes } = await startReplicaFrontEnd({ ...options, modelDir });
  return { engine: balancer, processes };
}

/**
 * Loads `model` (a directory or a hub id `org/name[@revision]`; default: the embedded demo model)
 * and serves it over gRPC (and HTTP).
 * @throws ModelNotFoundError when a hub id is neither cached nor downloaded.
 */
export async function serve(model?: string, options: ServeOptions = {}): Promise<ServeHandle> {
  const host = options.host ?? "127.0.0.1";
  const start = options.engineInProcess ? startEngine : startSupervisedEngine;
  const resolved = await resolveModels(model, options.engine ?? {}, options.hub);
  const { engine, processes } = await startServingEngine(resolved.model.dir, { ...options, engineOptions: resolved.options }, start);
  const servedModelName = options.servedModelName ?? resolved.model.name;
  const grpc = createGrpcServer({ engine, servedModelName, apiKey: options.apiKey });
  let http: FastGenServer | null = null;
  let httpUrl: string | null = null;
  try {
    const { address } = await grpc.listen(host, options.port ?? DEFAULT_GRPC_PORT);
    if (options.http !== undefined && options.http !== false) {
      http = createServer({ engine, servedModelName, apiKey: options.apiKey });
      ({ url: httpUrl } = await http.listen(host, options.http === true ? DEFAULT_HTTP_PORT : options.http));
    }
    // A wildcard bind is dialled on loopback.
    const dial = address.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "[::1]:");
    return {
      address,
      httpUrl,
      engine,
      processes,
      client: () => new FastGenClient(dial, { apiKey: options.apiKey }),
      async terminate() {
        await Promise.all([grpc.stop(), http?.stop()]);
        await engine.shutdown();
      },
    };
  } catch (e) {
    await Promise.all([grpc.stop(0), http?.stop()]);
    await engine.shutdown();
    throw e;
  }
}
