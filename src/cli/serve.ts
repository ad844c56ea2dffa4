/**
 * `fastgen serve`: loads a model into an engine (or replicas behind a load balancer: --replicas,
 * --replica) and serves the OpenAI-compatible HTTP API and the gRPC service on it.
 * Binds to 127.0.0.1 unless --host says otherwise; runs until SIGINT/SIGTERM, then drains (see
 * ops/shutdown.ts) and shuts the engine (and its replicas) down. Flags may come from --config FILE.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { StartEngineHooks } from "../engine/asyncEngine";
import { startEngine } from "../engine/asyncEngine";
import { startSupervisedEngine } from "../engine/supervisedEngine";
import type { EngineOptions } from "../engine/options";
import type { EngineClient } from "../engine/types";
import { createGrpcServer } from "../grpc/grpcServer";
import { startServingEngine } from "../deploy/serve";
import { createServer } from "../server/httpServer";
import { mergeConfigFile } from "../ops/configFile";
import type { LogFormat } from "../ops/logger";
import { LOG_FORMATS, Logger } from "../ops/logger";
import { DEFAULT_SHUTDOWN_TIMEOUT_S, shutDownOnSignal } from "../deploy/shutdown";
import { ChatTemplateError, renderChat } from "../tokenizer/chatTemplate";
import { TOOL_CALL_PARSERS } from "../server/tools/toolParsers";
import type { ToolCallParserName } from "../server/tools/toolParsers";
import { ENGINE_FLAG_HELP, ENGINE_FLAG_SPEC, UsageError, engineOptionsFromFlags, floatFlag, intFlag } from "../ops/engineFlags";
import { REPLICA_FLAG_HELP, REPLICA_FLAG_SPEC, replicaFlagsFrom } from "./replicaFlags";
import { CLIENT_BOUND_FLAG_HELP, CLIENT_BOUND_FLAG_SPEC, clientBoundsFrom } from "./clientBoundFlags";
import { apiKeyFrom } from "./apiKey";
import { MODEL_FLAG_SPEC, modelsFrom } from "./modelFlags";
import { checkPortsFree, loadedLine } from "./startupChecks";
import type { GenerationConfigMode } from "../server/samplingDefaults";
import { GENERATION_CONFIG_MODES, describeDefaults } from "../server/samplingDefaults";

/** The --help text of `fastgen serve`. */
export const SERVE_HELP = `Usage: fastgen serve [--model ID|DIR] [--host 127.0.0.1] [--port 8000] [options]

Serves an OpenAI-compatible API: /v1/models, /v1/completions, /v1/chat/completions,
/v1/responses, /tokenize, /detokenize, /health, /metrics (Prometheus), /version; and, with
--grpc-port, the gRPC service of proto/fastgen.proto (Generate, GenerateStream, ListModels,
Health, Abort).

Options:
  --model ID|DIR            a Hugging Face model directory, or a hub id org/name[@revision]
                            found in the hub cache or else downloaded into it (not with
                            HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1; HF_TOKEN or the token
                            \`hf auth login\` saved, for gated models) (default: the embedded
                            demo model)
  --download-dir DIR        the hub cache to look in and download into (default: $HF_HUB_CACHE,
                            else $HF_HOME/hub, else ~/.cache/huggingface/hub)
  --host HOST               address to bind (default 127.0.0.1: this machine only)
  --port N                  port to bind (default 8000; 0 = any free port)
  --api-key-file FILE       require "Authorization: Bearer KEY" on every route but /health, and
                            on every gRPC call but Health, KEY read from FILE (its trailing
                            newline dropped); replicas are reached with it too
                            (default: $FASTGEN_API_KEY when set, else no key)
  --api-key KEY             the same with KEY inline: other users of this machine can read it
                            in the process list, so prefer --api-key-file or $FASTGEN_API_KEY
  --served-model-name NAME  the model name clients send (default: the id as given, without
                            its @revision, or the directory's name)
  --chat-template FILE      a Jinja chat template replacing the model's own
  --tool-call-parser P      hermes | llama3_json | mistral: the format tool_choice "auto" parses
                            calls from, as the model's template teaches it (default hermes)
  --generation-config M     auto | vllm: auto applies generation_config.json's temperature, top_p,
                            top_k, min_p, repetition_penalty to requests that leave them unset and
                            caps max tokens at its max_new_tokens, as vLLM does; vllm ignores them
                            (default auto)
  --allowed-origins LIST    comma-separated origins browsers may call from (CORS), "*" for any
                            (default: none)
  --max-body-bytes N        largest request body or gRPC message accepted (default 8388608: 8 MiB)
  --max-queue N             generation requests held at once, HTTP and gRPC together, before
                            503 (gRPC: RESOURCE_EXHAUSTED) (default: no limit)
  --log-format F            text | json: json writes one JSON object per line, among them one
                            per request (id, tokens, timings, finish reason) (default text)
  --shutdown-timeout S      on SIGTERM, seconds in-flight requests may take to finish before
                            they are stopped (default ${DEFAULT_SHUTDOWN_TIMEOUT_S})
  --engine-in-process       run the engine in a thread of this process, not in a supervised child
                            process (then a native crash takes the server down instead of
                            failing only the requests in flight and restarting the engine)
  --config FILE             flags as a JSON object, keyed by flag name without "--"
                            ({"port": 8000, "max-queue": 64}); flags given here override it
${CLIENT_BOUND_FLAG_HELP}
${REPLICA_FLAG_HELP}
${ENGINE_FLAG_HELP}`;

/** Reads --tool-call-parser (default hermes). */
function readToolCallParser(v: string | undefined): ToolCallParserName {
  if (v === undefined) return "hermes";
  if (!(TOOL_CALL_PARSERS as readonly string[]).includes(v)) throw new UsageError(`--tool-call-parser must be one of ${TOOL_CALL_PARSERS.join(", ")}, got "${v}"`);
  return v as ToolCallParserName;
}

/** Reads --chat-template and renders a sample chat with it, so a broken template fails at startup. */
function readChatTemplate(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  if (!existsSync(path)) throw new UsageError(`--chat-template: no such file "${path}"`);
  const template = readFileSync(path, "utf8");
  try {
    renderChat({ chatTemplates: {}, bosToken: "", eosToken: "" }, [{ role: "user", content: "Hi" }], { template });
  } catch (e) {
    // A template may refuse some conversations on purpose (raise_exception); that is no defect.
    if (!(e instanceof ChatTemplateError) || !e.fromTemplate) throw new UsageError(`--chat-template ${path}: ${(e as Error).message}`);
  }
  return template;
}

/** What serveCommand starts the engine with (tests hand in a fake). */
export interface ServeDeps {
  startEngine: (modelDir: string, options: Partial<EngineOptions>, hooks: StartEngineHooks) => Promise<EngineClient>;
}

/** The flags of `fastgen serve` (and the keys of its --config file). */
export const SERVE_FLAG_SPEC = {
  ...MODEL_FLAG_SPEC,
  host: { type: "string" },
  port: { type: "string" },
  "api-key": { type: "string" },
  "api-key-file": { type: "string" },
  "served-model-name": { type: "string" },
  "chat-template": { type: "string" },
  "tool-call-parser": { type: "string" },
  "generation-config": { type: "string" },
  "allowed-origins": { type: "string" },
  "max-body-bytes": { type: "string" },
  "max-queue": { type: "string" },
  "log-format": { type: "string" },
  "shutdown-timeout": { type: "string" },
  config: { type: "string" },
  "engine-in-process": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  ...CLIENT_BOUND_FLAG_SPEC,
  ...ENGINE_FLAG_SPEC,
  ...REPLICA_FLAG_SPEC,
} as const;

/** Runs `fastgen serve` with the given argv (after the subcommand); resolves once it has stopped. */
export async function serveCommand(argv: string[], deps: Partial<ServeDeps> = {}): Promise<void> {
  const { values: given } = parseArgs({ args: argv, strict: true, options: SERVE_FLAG_SPEC });
  if (given.help) {
    console.log(SERVE_HELP);
    return;
  }
  const values = mergeConfigFile(given, SERVE_FLAG_SPEC);
  const host = values.host ?? "127.0.0.1";
  const port = intFlag("port", values.port, 0) ?? 8000;
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const apiKey = apiKeyFrom(values);
  const chatTemplate = readChatTemplate(values["chat-template"]);
  const toolCallParser = readToolCallParser(values["tool-call-parser"]);
  const maxBodyBytes = intFlag("max-body-bytes", values["max-body-bytes"]);
  const maxQueue = intFlag("max-queue", values["max-queue"]);
  const clientBounds = clientBoundsFrom(values);
  const logFormat = values["log-format"] ?? "text";
  if (!LOG_FORMATS.includes(logFormat as LogFormat)) throw new UsageError(`--log-format must be text or json, got "${logFormat}"`);
  const logger = new Logger(logFormat as LogFormat);
  const shutdownTimeout = floatFlag("shutdown-timeout", values["shutdown-timeout"]) ?? DEFAULT_SHUTDOWN_TIMEOUT_S;
  if (shutdownTimeout < 0) throw new UsageError(`--shutdown-timeout must be >= 0 seconds, got ${shutdownTimeout}`);
  const flagOptions = engineOptionsFromFlags(values);
  const replicaFlags = replicaFlagsFrom(values);
  const generationConfig = values["generation-config"] ?? "auto";
  if (!GENERATION_CONFIG_MODES.includes(generationConfig as GenerationConfigMode))
    throw new UsageError(`--generation-config must be ${GENERATION_CONFIG_MODES.join(" or ")}, got "${generationConfig}"`);
  const allowedOrigins = (values["allowed-origins"] ?? "").split(",").map((o) => o.trim()).filter((o) => o !== "");
  const grpcPort = replicaFlags.grpcPort;
  // Minutes of loading weights must not end in "address in use".
  await checkPortsFree(host, [{ port, what: "HTTP" }, ...(grpcPort === undefined ? [] : [{ port: grpcPort, what: "gRPC" }])]);

  // After the port check: a download takes minutes too.
  const { model: resolved, options: engineOptions } = await modelsFrom(values, flagOptions, (m) => logger.info(m));
  const modelDir = resolved.dir;
  const servedModelName = values["served-model-name"] ?? resolved.name;
  logger.info(`loading ${modelDir}`);
  const loadStart = performance.now();
  let lastShown = -1;
  const onProgress = (done: number, total: number) => {
    const pct = total > 0 ? Math.floor((100 * done) / total / 10) * 10 : 100;
    if (pct !== lastShown) logger.info(`loading weights ${pct}%`);
    lastShown = pct;
  };
  const frontEnd = { ...replicaFlags.frontEnd, engineOptions, apiKey, log: (m: string) => logger.info(m) };
  // By default the engine runs in a child process that is restarted if it crashes (supervisedEngine.ts).
  const start: ServeDeps["startEngine"] = deps.startEngine ??
    (values["engine-in-process"] ? startEngine : (dir, o, h) => startSupervisedEngine(dir, o, h, { log: (m) => logger.warn(m) }));
  const { engine } = await startServingEngine(modelDir, frontEnd, start, { onProgress });
  logger.info(loadedLine(engine, modelDir, performance.now() - loadStart));
  const server = createServer({
    engine, apiKey, servedModelName, chatTemplate, toolCallParser, maxBodyBytes, maxQueue, logger, accessLog: true,
    generationConfig: generationConfig as GenerationConfigMode, allowedOrigins, ...clientBounds,
  });
  const defaults = describeDefaults(server.context.samplingDefaults);
  if (defaults) logger.info(`sampling defaults from generation_config.json: ${defaults} (--generation-config vllm ignores them)`);
  // admission: the HTTP server's counter, so --max-queue bounds both front ends together.
  const grpc = grpcPort === undefined ? null : createGrpcServer({
    engine, servedModelName, apiKey, maxMessageBytes: maxBodyBytes, admission: server.context,
  });
  let url: string;
  let grpcAddress: string | null = null;
  let listening = `${host}:${port}`;
  try {
    ({ url } = await server.listen(host, port));
    listening = `${host}:${grpcPort} (gRPC)`;
    if (grpc) ({ address: grpcAddress } = await grpc.listen(host, grpcPort!));
  } catch (e) {
    await Promise.all([server.stop().catch(() => {}), grpc?.stop(0)]);
    await engine.shutdown();
    throw new Error(`cannot listen on ${listening}: ${(e as Error).message}`);
  }
  // Signal handlers first: whoever waits for the ready line may send SIGTERM right after it.
  const stopped = shutDownOnSignal({ http: server, grpc: grpc ?? { stop: async () => {} }, engine, logger, timeoutMs: shutdownTimeout * 1000 });
  const model = server.context.modelName;
  const ready = `serving ${model} (max context ${engine.maxModelLen} tokens) at ${url}/v1${grpcAddress ? ` and grpc://${grpcAddress}` : ""}`;
  logger.out(ready, logFormat === "json" ? { model, url: `${url}/v1`, grpc: grpcAddress, max_model_len: engine.maxModelLen } : undefined);
  if (apiKey) logger.info("API key required (Authorization: Bearer ...)");
  await stopped;
}
