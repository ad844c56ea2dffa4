/**
 * Entry point of the single binary (`bun run compile` → dist/fastgen). The binary embeds
 * libfastgen.so and the demo model; on first run they are written once to
 * $XDG_CACHE_HOME/fastgen/<content hash>/ (dlopen and mmap need real files), then the normal
 * CLI runs with FASTGEN_LIB and FASTGEN_DEFAULT_MODEL pointing there.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { EMBEDDED_FILES } from "./embedded.generated";
import { defaultEnvVar } from "./envVars";

async function extract(): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for (const f of EMBEDDED_FILES) hasher.update(`${f.name}:${Bun.file(f.path).size};`);
  const root = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "fastgen", hasher.digest("hex").slice(0, 16));
  if (existsSync(join(root, ".complete"))) return root;
  const tmp = `${root}.tmp-${process.pid}`;
  for (const f of EMBEDDED_FILES) {
    const dst = join(tmp, f.name);
    mkdirSync(join(dst, ".."), { recursive: true });
    writeFileSync(dst, new Uint8Array(await Bun.file(f.path).arrayBuffer()));
  }
  writeFileSync(join(tmp, ".complete"), "");
  mkdirSync(join(root, ".."), { recursive: true });
  try {
    renameSync(tmp, root); // atomic: a concurrent first run either wins or finds it complete
  } catch {
    if (!existsSync(join(root, ".complete"))) throw new Error(`could not unpack the embedded files to ${root}`);
  }
  return root;
}

const root = await extract();
defaultEnvVar("FASTGEN_LIB", join(root, "libfastgen.so"));
defaultEnvVar("FASTGEN_DEFAULT_MODEL", join(root, "models", "fastgen-demo-tiny"));
defaultEnvVar("FASTGEN_COMPILED", "1");
await import("./cli");
