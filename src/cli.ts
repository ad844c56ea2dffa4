#!/usr/bin/env bun
/**
 * `fastgen` command line: generate | serve | replica | bench | models. Each subcommand has --help.
 * Errors print one line (no stack trace) and exit non-zero: 2 for usage, 1 for anything else.
 */
import { BENCH_HELP, benchCommand } from "./cli/bench";
import { GENERATE_HELP, generateCommand } from "./cli/generate";
import { helpEnvText } from "./cli/helpEnv";
import { MODELS_HELP, modelsCommand } from "./cli/models";
import { UsageError } from "./ops/engineFlags";
import { REPLICA_HELP, replicaCommand } from "./cli/replica";
import { SERVE_HELP, serveCommand } from "./cli/serve";
import { envVar } from "./envVars";

const HELP = `fastgen — LLM inference with Dynamic SplitFuse scheduling

Usage: fastgen <command> [options]

Commands:
  generate   run prompts to completion and print the output (--json for machines)
  serve      OpenAI-compatible HTTP server (streaming SSE, /metrics) and gRPC, over one engine
             or several replicas (--replicas N, --replica HOST:PORT)
  replica    one engine replica serving gRPC only, for a front end on another machine
  bench      load-generator benchmark against an OpenAI-compatible server
  models     the supported model families (config.json model_type) and what each honours

Run "fastgen <command> --help" for a command's options, "fastgen --help-env" for the
FASTGEN_* environment variables (libfastgen's knobs, then the TypeScript side's).

${GENERATE_HELP}

${SERVE_HELP}

${REPLICA_HELP}

${BENCH_HELP}

${MODELS_HELP}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "generate":
      await generateCommand(rest);
      return 0;
    case "serve":
      await serveCommand(rest);
      return 0;
    case "replica":
      await replicaCommand(rest);
      return 0;
    case "bench":
      await benchCommand(rest);
      return 0;
    case "models":
      await modelsCommand(rest);
      return 0;
    case "engine-process": // internal: the engine child `fastgen serve` supervises (engineChild.ts)
      await (await import("./engine/engineChild")).runEngineChild();
      return 0;
    case "--help-env":
      console.log(helpEnvText());
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(HELP);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}" (try fastgen --help)`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  const err = e as Error;
  const usage =
    err instanceof UsageError || err.name === "BenchUsageError" || (err as { code?: string }).code?.startsWith?.("ERR_PARSE_ARGS");
  console.error(`fastgen: ${err.message}`);
  if (envVar("FASTGEN_DEBUG")) console.error(err.stack);
  process.exitCode = usage ? 2 : 1;
}
