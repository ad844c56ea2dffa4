/**
 * The Hugging Face environment variables, read as huggingface_hub's constants.py reads them: where
 * HF_HOME is, whether the network is off, and the access token. hub.ts and hubCache.ts ask here
 * so that each variable has one reading.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** Environment variables, as `process.env` holds them (tests hand in their own). */
export type Env = Record<string, string | undefined>;

const TRUE = new Set(["1", "ON", "YES", "TRUE"]);

/** huggingface_hub's `_is_true`: "1", "ON", "YES" or "TRUE" in any case; anything else or unset is off. */
export const isTrue = (value: string | undefined): boolean => TRUE.has((value ?? "").toUpperCase());

/** A directory and what chose it (for error messages). */
export interface EnvDir {
  dir: string;
  source: string;
}

/** HF_HOME: `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function hfHome(env: Env): EnvDir {
  if (env.HF_HOME) return { dir: env.HF_HOME, source: "$HF_HOME" };
  if (env.XDG_CACHE_HOME) return { dir: join(env.XDG_CACHE_HOME, "huggingface"), source: "$XDG_CACHE_HOME/huggingface" };
  return { dir: join(env.HOME || homedir(), ".cache", "huggingface"), source: "default" };
}

/**
 * The variable that turns the network off, as `NAME=value`, or null when it is on.
 * huggingface_hub reads `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE`: the first one set decides, so
 * HF_HUB_OFFLINE=0 keeps the network on whatever TRANSFORMERS_OFFLINE says.
 */
export function offlineSwitch(env: Env): string | null {
  const name = env.HF_HUB_OFFLINE ? "HF_HUB_OFFLINE" : "TRANSFORMERS_OFFLINE";
  return isTrue(env[name]) ? `${name}=${env[name]}` : null;
}

/**
 * The token sent to the hub: `$HF_TOKEN`, else `$HUGGING_FACE_HUB_TOKEN`, else the file
 * `hf auth login` writes (`$HF_TOKEN_PATH`, else `$HF_HOME/token`); undefined when there is none
 * or the file cannot be read. It is a secret: nothing logs it or puts it in an error.
 */
export function hubToken(env: Env): string | undefined {
  const fromEnv = clean(env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN);
  if (fromEnv) return fromEnv;
  try {
    return clean(readFileSync(env.HF_TOKEN_PATH || join(hfHome(env).dir, "token"), "utf8"));
  } catch {
    return undefined; // no file (never logged in), or unreadable: no token, as huggingface_hub
  }
}

/** huggingface_hub's `_clean_token`: line breaks dropped, whitespace trimmed, "" is none. */
const clean = (token: string | undefined): string | undefined => token?.replace(/[\r\n]/g, "").trim() || undefined;
