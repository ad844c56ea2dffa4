// --api-key-file (issue 25, item 9): a key kept out of the process list. The file's trailing
// newline is dropped; an empty, unreadable or ambiguous key is a usage error that says why.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata, status } from "@grpc/grpc-js";
import { apiKeyFrom } from "../../src/cli/apiKey";
import { UsageError } from "../../src/ops/engineFlags";
import { REPLICA_HELP } from "../../src/cli/replica";
import { SERVE_HELP } from "../../src/cli/serve";
import { protoClient } from "../grpc/protoClient";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
let dir: string;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), "fastgen-key-"))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("apiKeyFrom", () => {
  const noEnv = {};
  test("the file's key, its one trailing newline (LF or CRLF) dropped", () => {
    expect(apiKeyFrom({ "api-key-file": file("lf", "s3cret\n") }, noEnv)).toBe("s3cret");
    expect(apiKeyFrom({ "api-key-file": file("crlf", "s3cret\r\n") }, noEnv)).toBe("s3cret");
    expect(apiKeyFrom({ "api-key-file": file("bare", "s3cret") }, noEnv)).toBe("s3cret");
  });

  test("the file wins over $FASTGEN_API_KEY; without flags the environment, else no key", () => {
    expect(apiKeyFrom({ "api-key-file": file("k", "from-file\n") }, { FASTGEN_API_KEY: "from-env" })).toBe("from-file");
    expect(apiKeyFrom({}, { FASTGEN_API_KEY: "from-env" })).toBe("from-env");
    expect(apiKeyFrom({ "api-key": "inline" }, { FASTGEN_API_KEY: "from-env" })).toBe("inline");
    expect(apiKeyFrom({}, { FASTGEN_API_KEY: "" })).toBeUndefined();
  });

  test("empty, missing, a directory, unreadable, two lines or both flags: a UsageError naming the cause", () => {
    const bad = (values: Record<string, unknown>, why: RegExp) => {
      expect(() => apiKeyFrom(values, noEnv)).toThrow(UsageError);
      expect(() => apiKeyFrom(values, noEnv)).toThrow(why);
    };
    bad({ "api-key-file": file("empty", "") }, /is empty/);
    bad({ "api-key-file": file("newline", "\n") }, /is empty/);
    bad({ "api-key-file": join(dir, "nope") }, /cannot read it \(no such file\)/);
    const sub = join(dir, "sub");
    mkdirSync(sub);
    bad({ "api-key-file": sub }, /cannot read it \(it is a directory\)/);
    bad({ "api-key-file": file("two", "a\nb\n") }, /one line/);
    bad({ "api-key-file": file("spaced", " key\n") }, /leading or trailing spaces/);
    bad({ "api-key-file": file("k2", "k\n"), "api-key": "k" }, /not both/);
    if (process.getuid?.() !== 0) {
      const locked = file("locked", "k\n");
      chmodSync(locked, 0o000);
      bad({ "api-key-file": locked }, /permission denied/);
    }
  });

  test("--help says --api-key is visible to other users and offers the file", () => {
    for (const help of [SERVE_HELP, REPLICA_HELP]) {
      expect(help).toContain("--api-key-file FILE");
      expect(help).toMatch(/other users of this machine can read it\s+in the\s+process list/);
    }
  });
});

describe("fastgen replica --api-key-file", () => {
  test("an empty key file stops it at startup with status 2", () => {
    const r = Bun.spawnSync([process.execPath, CLI, "replica", "--api-key-file", file("e", "")], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("is empty");
  });

  test("the key read from the file guards every RPC but Health", async () => {
    const env = { ...process.env, FASTGEN_API_KEY: undefined };
    const p = Bun.spawn([process.execPath, CLI, "replica", "--model", FIXTURE, "--port", "0", "--kv-blocks", "32", "--api-key-file", file("rk", "filekey\n")],
      { stdout: "pipe", stderr: "pipe", env });
    try {
      const reader = p.stdout.getReader();
      let out = "";
      while (!out.includes("grpc://")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      const address = out.match(/grpc:\/\/(\S+)/)![1]!;
      const c = protoClient(address);
      try {
        expect((await c.Health()).serving).toBe(true);
        const refused = await c.ListModels().then(() => null, (e) => e);
        expect(refused?.code).toBe(status.UNAUTHENTICATED);
        const md = new Metadata();
        md.set("authorization", "Bearer filekey");
        const models = await new Promise<{ models: { id: string }[] }>((resolve, reject) =>
          c.raw.ListModels!({}, md, (err: Error | null, res: { models: { id: string }[] }) => (err ? reject(err) : resolve(res))));
        expect(models.models[0]!.id).toBe("llama-gqa");
      } finally {
        c.close();
      }
    } finally {
      p.kill("SIGTERM");
      await p.exited;
    }
  }, 30_000);
});
