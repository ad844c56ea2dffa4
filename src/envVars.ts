/**
 * The FASTGEN_* environment variables the TypeScript side reads: one registry, as
 * libfastgen/src/core/knobs.h is for the library's. `fastgen --help-env` prints both, and a test
 * (test/layers/envVars.test.ts) keeps `process.env.FASTGEN_*` out of every other file.
 */

export const ENV_VARS = {
  FASTGEN_BACKEND: "the backend when none is asked for: cpu or cuda (default: cuda where a GPU is visible, else cpu)",
  FASTGEN_LIB: "path of libfastgen.so (default: beside the executable, else zig-out/lib)",
  FASTGEN_DEFAULT_MODEL: "the model directory used without --model (the single binary points it at its embedded demo model)",
  FASTGEN_API_KEY: "the API key fastgen's clients and replicas send when none is given (by environment: arguments are visible to every user)",
  FASTGEN_DEBUG: "1: CLI errors print their stack",
  FASTGEN_LOOP_TIMING: "1: the engine loop's host time per pass on stderr (native pass, rest of step, post, yield)",
  FASTGEN_EXIT_WITH_PARENT: "1: a replica exits when its front end's stdin closes (set by the front end)",
  FASTGEN_COMPILED: "set by the single binary: workers load from its embedded file system",
  FASTGEN_DEBUG_CRASH_ON_PROMPT: "TEST ONLY: token ids \"1,2,3\": the engine process aborts on that prompt",
} as const;

export type EnvVar = keyof typeof ENV_VARS;

/** The variable's value; unset and "" are both undefined. */
export function envVar(name: EnvVar): string | undefined {
  return process.env[name] || undefined;
}

/** Sets the variable unless it is already set (the single binary's defaults for what it spawns). */
export function defaultEnvVar(name: EnvVar, value: string): void {
  process.env[name] ??= value;
}

/** The registry as text lines, with the value set here if any. */
export function formatEnvVars(): string {
  const names = Object.keys(ENV_VARS) as EnvVar[];
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((n) => {
    const v = process.env[n];
    return `  ${n.padEnd(width)}  ${ENV_VARS[n]}${v === undefined ? "" : ` [set: ${JSON.stringify(v)}]`}`;
  });
  return ["Environment variables of the TypeScript side:", ...lines].join("\n");
}
