/**
 * The command that runs the fastgen CLI, for the child processes it spawns (replicas, the engine
 * process): a compiled binary is its own CLI (its modules live under /$bunfs/); from a checkout,
 * Bun runs src/cli.ts.
 */
import { join } from "node:path";

/** argv prefix that runs `fastgen` (append the subcommand and its flags). */
export function fastgenCommand(): string[] {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.includes("~BUN");
  return compiled ? [process.execPath] : [process.execPath, join(import.meta.dir, "..", "cli.ts")];
}
