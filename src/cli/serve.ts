/**
 * `fastgen serve`: loads a model into an engine and serves the OpenAI-compatible HTTP API on it.
 * Binds to 127.0.0.1 unless --host says otherwise; runs until SIGINT/SIGTERM, then closes the
 * server and shuts the engine down.
 */
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { StartEngineHooks } from "../engine/asyncEngine";
import { startEngine } from "../engine/asyncEngine";
import type { EngineOptions } from "../engine/options";
import type { EngineClient } from "../engine/types";
import { defaultModelDir } from "../model/defaultModel";
import { createServer } from "../server/httpServer";
import { ChatTemplateError, renderChat } from "../tokenizer/chatTemplate";
import { ENGINE_FLAG_HELP, ENGINE_FLAG_SPEC, UsageError, engineOptionsFromFlags, intFlag } from "./engineFlags";

/** The --help text of `fastgen serve`. */
export const SERVE_HELP = `Usage: fastgen serve [--model DIR] [--host 127.0.0.1] [--port 8000] [options]

Serves an OpenAI-compatible API: /v1/models, /v1/completions, /v1/chat/completions,
/tokenize, /detokenize, /health, /metrics (Prometheus), /version.

Options:
  --model DIR               Hugging Face model directory (default: the embedded demo model)
  --host HOST               address to bind (default 127.0.0.1: this machine only)
  --port N                  port to bind (default 8000; 0 = any free port)
  --api-key KEY             require "Authorization: Bearer KEY" on every route but /health
                            (default: $FASTGEN_API_KEY when set, else no key)
  --served-model-name NAME  the model name clients send (default: the model's name)
  --chat-template FILE      a Jinja chat template replacing the model's own
  --max-body-bytes N        largest request body accepted (default 8388608: 8 MiB)
  --max-queue N             generation requests held at once before 503 (default: no limit)
${ENGINE_FLAG_HELP}`;

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

/** Runs `fastgen serve` with the given argv (after the subcommand); resolves once it has stopped. */
export async function serveCommand(argv: string[], deps: ServeDeps = { startEngine }): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      model: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      "api-key": { type: "string" },
      "served-model-name": { type: "string" },
      "chat-template": { type: "string" },
      "max-body-bytes": { type: "string" },
      "max-queue": { type: "string" },
      help: { type: "boolean", short: "h" },
      ...ENGINE_FLAG_SPEC,
    },
  });
  if (values.help) {
    console.log(SERVE_HELP);
    return;
  }
  const host = values.host ?? "127.0.0.1";
  const port = intFlag("port", values.port, 0) ?? 8000;
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const apiKey = values["api-key"] ?? (process.env.FASTGEN_API_KEY || undefined);
  const chatTemplate = readChatTemplate(values["chat-template"]);
  const maxBodyBytes = intFlag("max-body-bytes", values["max-body-bytes"]);
  const maxQueue = intFlag("max-queue", values["max-queue"]);
  const engineOptions = engineOptionsFromFlags(values);
  const modelDir = values.model ?? defaultModelDir();

  console.error(`fastgen: loading ${modelDir}`);
  let lastShown = -1;
  const engine = await deps.startEngine(modelDir, engineOptions, {
    onProgress(done, total) {
      const pct = total > 0 ? Math.floor((100 * done) / total / 10) * 10 : 100;
      if (pct !== lastShown) console.error(`fastgen: loading weights ${pct}%`);
      lastShown = pct;
    },
  });
  const server = createServer({ engine, apiKey, servedModelName: values["served-model-name"], chatTemplate, maxBodyBytes, maxQueue });
  let url: string;
  try {
    ({ url } = await server.listen(host, port));
  } catch (e) {
    await engine.shutdown();
    throw new Error(`cannot listen on ${host}:${port}: ${(e as Error).message}`);
  }
  console.log(`fastgen: serving ${server.context.modelName} (max context ${engine.maxModelLen} tokens) at ${url}/v1`);
  if (apiKey) console.log("fastgen: API key required (Authorization: Bearer ...)");

  await new Promise<void>((resolve) => {
    const stop = async (signal: string) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      console.error(`fastgen: ${signal}, shutting down`);
      await server.stop();
      await engine.shutdown();
      resolve();
    };
    const onInt = () => void stop("SIGINT");
    const onTerm = () => void stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}
