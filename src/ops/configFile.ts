/**
 * `--config FILE`: a command's flags as one JSON object, keyed by flag name without the dashes:
 *
 *   { "port": 8000, "max-batch-tokens": 768, "log-format": "json", "replica": ["gpu1:50051"] }
 *
 * Numbers may be written as numbers; a repeatable flag takes a list. Flags on the command line
 * override the file. A key that is no flag of the command, or a value of the wrong kind, is a
 * UsageError naming the file and the key: a typo must not silently fall back to a default.
 */
import { readFileSync } from "node:fs";
import { UsageError } from "./engineFlags";

/** The options table given to node:util parseArgs. */
export type FlagSpec = Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;

/** Parsed flag values, as parseArgs returns them. */
export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Keys a config file may not set (they make no sense there). */
const NOT_IN_FILE = new Set(["config", "help"]);

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, "-");

function scalar(path: string, key: string, type: "string" | "boolean", v: unknown): string | boolean {
  if (type === "boolean") {
    if (typeof v !== "boolean") throw new UsageError(`${path}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  throw new UsageError(`${path}: "${key}" must be a string or a number, got ${JSON.stringify(v)}`);
}

/** Checks a parsed config object against `spec` and returns it as flag values. */
export function configValues(path: string, config: unknown, spec: FlagSpec): FlagValues {
  if (config === null || typeof config !== "object" || Array.isArray(config))
    throw new UsageError(`${path}: a config file must hold one JSON object of flag names and values`);
  const out: FlagValues = {};
  for (const [key, v] of Object.entries(config)) {
    const flag = spec[key];
    if (!flag || NOT_IN_FILE.has(key)) {
      const near = spec[kebab(key)] && !NOT_IN_FILE.has(kebab(key)) ? ` (did you mean "${kebab(key)}"?)` : "";
      throw new UsageError(`${path}: unknown key "${key}"${near}; keys are the flags of the command without "--"`);
    }
    if (flag.multiple) {
      const list = Array.isArray(v) ? v : [v];
      out[key] = list.map((x) => scalar(path, key, flag.type, x));
    } else {
      if (Array.isArray(v)) throw new UsageError(`${path}: "${key}" takes one value, got a list`);
      out[key] = scalar(path, key, flag.type, v);
    }
  }
  return out;
}

/** Reads and checks a config file (JSON). */
export function readConfigFile(path: string, spec: FlagSpec): FlagValues {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`--config: cannot read "${path}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  return configValues(path, config, spec);
}

/**
 * The file's values under the command line's: `flags` as parsed, with --config FILE (if given)
 * read and merged beneath them. The result has no "config" key.
 */
export function mergeConfigFile<V extends FlagValues>(flags: V & { config?: string | boolean | (string | boolean)[] }, spec: FlagSpec): V {
  const { config, ...given } = flags;
  if (config === undefined) return given as V;
  if (typeof config !== "string") throw new UsageError("--config takes a file name");
  const fromFile = readConfigFile(config, spec);
  for (const [k, v] of Object.entries(given)) if (v !== undefined) fromFile[k] = v;
  return fromFile as V;
}
