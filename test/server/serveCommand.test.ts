import { afterAll, afterEach, describe, expect, mock, spyOn, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../src/ops/engineFlags";
import type { ServeDeps } from "../../src/cli/serve";
import { SERVE_HELP, serveCommand } from "../../src/cli/serve";
import { FakeEngine } from "./fakeEngine";

const dir = mkdtempSync(join(tmpdir(), "fastgen-serve-"));
const brokenTemplate = join(dir, "broken.jinja");
writeFileSync(brokenTemplate, "{% for m in messages %}{{ m.content }");
const goodTemplate = join(dir, "good.jinja");
writeFileSync(goodTemplate, "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}>");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// serve.ts loads the model through startEngine; hand it the fake engine instead.
const started: { modelDir: string; options: unknown }[] = [];
const engine = new FakeEngine();
const deps: ServeDeps = {
  startEngine: async (modelDir, options) => {
    started.push({ modelDir, options });
    return engine;
  },
};

afterEach(() => mock.restore());

describe("fastgen serve", () => {
  test("--help prints every flag", async () => {
    const log = spyOn(console, "log").mockImplementation(() => {});
    await serveCommand(["--help"], deps);
    expect(log).toHaveBeenCalledWith(SERVE_HELP);
    for (const flag of ["--model", "--host", "--port", "--api-key", "--served-model-name", "--max-batch-tokens", "--max-seqs", "--policy", "--chat-template"])
      expect(SERVE_HELP).toContain(flag);
    expect(SERVE_HELP).toContain("127.0.0.1");
  });

  test.each([
    [["--port", "http"], "--port"],
    [["--port", "70000"], "--port"],
    [["--policy", "fifo"], "--policy"],
    [["--max-seqs", "0"], "--max-seqs"],
    [["--chat-template", "/nonexistent/t.jinja"], "--chat-template"],
    [["--chat-template", brokenTemplate], "--chat-template"],
  ])("%j is a usage error", async (argv, flag) => {
    const err = await serveCommand([...argv, "--model", "/m"], deps).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain(flag);
  });

  test("starts the engine with the flags, binds 127.0.0.1, prints the URL and model, stops on SIGINT", async () => {
    const lines: string[] = [];
    spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
    spyOn(console, "error").mockImplementation(() => {});
    const shutdown = spyOn(engine, "shutdown");
    const running = serveCommand([
      "--model", "/models/x", "--port", "0", "--grpc-port", "0", "--served-model-name", "served", "--max-batch-tokens", "128", "--policy", "orca", "--api-key", "k", "--chat-template", goodTemplate,
    ], deps);
    let url = "";
    for (let i = 0; i < 200 && !url; i++) {
      await Bun.sleep(5);
      url = lines.join("\n").match(/http:\/\/[^\s]+\/v1/)?.[0] ?? "";
    }
    expect(url).toStartWith("http://127.0.0.1:");
    expect(lines.join("\n")).toContain("served");
    expect(started.at(-1)).toEqual({ modelDir: "/models/x", options: { maxBatchTokens: 128, policy: "orca" } });
    const models = await fetch(`${url}/models`, { headers: { authorization: "Bearer k" } }).then((r) => r.json());
    expect(models.data[0].id).toBe("served");
    const tokens = await fetch(url.replace(/\/v1$/, "/tokenize"), {
      method: "POST", headers: { authorization: "Bearer k" }, body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }] }),
    }).then((r) => r.json());
    expect(engine.tokenizer.decode(tokens.tokens)).toBe("[user] Hi\n>");
    process.emit("SIGINT");
    await running;
    expect(shutdown).toHaveBeenCalled();
    expect(await fetch(`${url}/models`).catch((e) => e)).toBeInstanceOf(Error);
  });
});
