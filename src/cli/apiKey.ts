/**
 * The API key of `fastgen serve` and `fastgen replica`, from --api-key-file FILE, --api-key KEY or
 * $FASTGEN_API_KEY (in that order). A key given on the command line can be read by every user of
 * the machine (ps, /proc/PID/cmdline), so the help text steers to the file or the environment.
 */
import { readFileSync } from "node:fs";
import { UsageError } from "../ops/engineFlags";

/** The API key flags, for a command's flag spec. */
export const API_KEY_FLAG_SPEC = {
  "api-key": { type: "string" },
  "api-key-file": { type: "string" },
} as const;

/** Reads the key flags of parsed `values`; undefined means no key. Throws UsageError for a bad file. */
export function apiKeyFrom(values: Record<string, unknown>, env: Record<string, string | undefined> = process.env): string | undefined {
  const inline = values["api-key"] as string | undefined;
  const file = values["api-key-file"] as string | undefined;
  if (file === undefined) return inline ?? (env.FASTGEN_API_KEY || undefined);
  if (inline !== undefined) throw new UsageError("give --api-key or --api-key-file, not both");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (e as Error).message;
    throw new UsageError(`--api-key-file ${file}: cannot read it (${why})`);
  }
  // Editors and `echo KEY > FILE` end the file with a newline; that newline is no part of the key.
  const key = text.replace(/\r?\n$/, "");
  if (key === "") throw new UsageError(`--api-key-file ${file} is empty`);
  // Clients' Bearer tokens are compared trimmed and on one line, so such a key could never match.
  if (key !== key.trim() || /[\r\n]/.test(key)) throw new UsageError(`--api-key-file ${file}: the key must be one line without leading or trailing spaces`);
  return key;
}
