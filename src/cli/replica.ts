/**
 * `fastgen replica`: loads a model into one engine and serves only the gRPC service on it, for a
 * front end (`fastgen serve --replica HOST:PORT`, or one that spawned it with --replicas N).
 * Binds to 127.0.0.1 unless --host says otherwise; runs until SIGINT/SIGTERM, or, when spawned by
 * a front end (FASTGEN_EXIT_WITH_PARENT=1), until its stdin closes because the front end is gone.
 */
import { parseArgs } from "node:util";
import { startEngine } from "../engine/asyncEngine";
import { createGrpcServer } from "../grpc/grpcServer";
import { mergeConfigFile } from "../ops/configFile";
import { LOG_FORMATS, Logger, type LogFormat } from "../ops/logger";
import { DEFAULT_SHUTDOWN_TIMEOUT_S } from "../deploy/shutdown";
import { ENGINE_FLAG_HELP, ENGINE_FLAG_SPEC, UsageError, engineOptionsFromFlags, floatFlag, intFlag } from "../ops/engineFlags";
import type { ServeDeps } from "./serve";
import { API_KEY_FLAG_SPEC, apiKeyFrom } from "./apiKey";
import { MODEL_FLAG_SPEC, modelsFrom } from "./modelFlags";
import { envVar } from "../envVars";

/** The port a replica binds when --port is not given. */
export const DEFAULT_REPLICA_PORT = 50051;

/** The --help text of `fastgen replica`. */
export const REPLICA_HELP = `Usage: fastgen replica [--model ID|DIR] [--host 127.0.0.1] [--port ${DEFAULT_REPLICA_PORT}] [options]

Runs one engine replica and serves the gRPC API (proto/fastgen.proto) only, for a front end:
  fastgen replica --port 50051 --host 0.0.0.0           (on each GPU machine)
  fastgen serve --replica gpu1:50051 --replica gpu2:50051   (the front end: HTTP + gRPC + load balancer)

Options:
  --model ID|DIR a Hugging Face model directory, or a hub id org/name[@revision] found in the
                 hub cache or else downloaded into it (default: the embedded demo model); the
                 front end must load the same model (its name and tokenizer)
  --download-dir DIR  the hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else
                 ~/.cache/huggingface/hub)
  --host HOST    address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for all)
  --port N       gRPC port (default ${DEFAULT_REPLICA_PORT}; 0 = any free port, printed at startup)
  --api-key-file FILE  require metadata "authorization: Bearer KEY" on every RPC but Health,
                 KEY read from FILE (its trailing newline dropped); the front end must use the
                 same key (default: $FASTGEN_API_KEY when set, else no key)
  --api-key KEY  the same with KEY inline: other users of this machine can read it in the
                 process list, so prefer --api-key-file or $FASTGEN_API_KEY
  --max-queue N  Generate calls held at once before RESOURCE_EXHAUSTED, which sends a front
                 end's request to another replica (default: no limit)
  --shutdown-timeout S  on SIGTERM, seconds in-flight calls may take to finish before they are
                 ended as ABORT (default ${DEFAULT_SHUTDOWN_TIMEOUT_S})
  --log-format F text | json: json writes each log line as one JSON object (default text)
  --config FILE  flags as a JSON object keyed by flag name without "--"; command-line flags win
${ENGINE_FLAG_HELP}`;

/** The flags of `fastgen replica` (and the keys of its --config file). */
const REPLICA_COMMAND_FLAGS = {
  ...MODEL_FLAG_SPEC, host: { type: "string" }, port: { type: "string" }, ...API_KEY_FLAG_SPEC,
  "max-queue": { type: "string" }, "shutdown-timeout": { type: "string" }, "log-format": { type: "string" }, config: { type: "string" },
  help: { type: "boolean", short: "h" }, ...ENGINE_FLAG_SPEC,
} as const;

/** Watches stdin: `closed` resolves once the parent holding its other end has exited. */
function watchStdin(): { closed: Promise<void>; stop(): void } {
  const reader = Bun.stdin.stream().getReader();
  const closed = (async () => {
    while (!(await reader.read()).done);
  })();
  // stop() lets the process exit: a pending read would keep it alive.
  return { closed: closed.catch(() => {}), stop: () => void reader.cancel().catch(() => {}) };
}

/** Runs `fastgen replica` with the given argv (after the subcommand); resolves once it has stopped. */
export async function replicaCommand(argv: string[], deps: Pick<ServeDeps, "startEngine"> = { startEngine }): Promise<void> {
  const { values: given } = parseArgs({ args: argv, strict: true, options: REPLICA_COMMAND_FLAGS });
  if (given.help) {
    console.log(REPLICA_HELP);
    return;
  }
  const values = mergeConfigFile(given, REPLICA_COMMAND_FLAGS);
  const shutdownTimeout = floatFlag("shutdown-timeout", values["shutdown-timeout"]) ?? DEFAULT_SHUTDOWN_TIMEOUT_S;
  if (shutdownTimeout < 0) throw new UsageError(`--shutdown-timeout must be >= 0 seconds, got ${shutdownTimeout}`);
  const host = values.host ?? "127.0.0.1";
  const port = intFlag("port", values.port, 0) ?? DEFAULT_REPLICA_PORT;
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const apiKey = apiKeyFrom(values);
  const maxQueue = intFlag("max-queue", values["max-queue"]) ?? Infinity;
  const logFormat = values["log-format"] ?? "text";
  if (!LOG_FORMATS.includes(logFormat as LogFormat)) throw new UsageError(`--log-format must be text or json, got "${logFormat}"`);
  const logger = new Logger(logFormat as LogFormat);

  const { model, options } = await modelsFrom(values, engineOptionsFromFlags(values), (m) => logger.info(m));
  logger.info(`replica loading ${model.dir}`);
  const engine = await deps.startEngine(model.dir, options, {});
  const server = createGrpcServer({ engine, apiKey, admission: { maxQueue, metrics: { inFlight: 0 } } });
  let address: string;
  try {
    ({ address } = await server.listen(host, port));
  } catch (e) {
    await engine.shutdown();
    throw new Error(`cannot listen on ${host}:${port}: ${(e as Error).message}`);
  }

  const parent = envVar("FASTGEN_EXIT_WITH_PARENT") === "1" ? watchStdin() : null;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = async (why: string, graceMs?: number) => {
      if (stopping) return;
      stopping = true;
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      logger.info(`replica ${why}, shutting down`);
      parent?.stop();
      await server.stop(graceMs);
      await engine.shutdown();
      resolve();
    };
    const onInt = () => void stop("SIGINT", shutdownTimeout * 1000);
    const onTerm = () => void stop("SIGTERM", shutdownTimeout * 1000);
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    // A front end that spawned this replica reads the port from this line; printed once the
    // signal handlers are in place, so a SIGTERM right after it still drains.
    logger.out(`replica serving ${engine.modelName} (max context ${engine.maxModelLen} tokens) at grpc://${address}`,
      logFormat === "json" ? { model: engine.modelName, grpc: address, max_model_len: engine.maxModelLen } : undefined);
    // Nobody is left to answer: no grace period.
    void parent?.closed.then(() => stop("front end gone", 0));
  });
}
