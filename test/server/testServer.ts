/**
 * Starts the HTTP server on 127.0.0.1 (random port) over a FakeEngine (or, for the end-to-end
 * tests, any engine), with an `openai` client pointed at it. Retries are off so status codes
 * reach the test as thrown APIErrors.
 */
import OpenAI from "openai";
import type { EngineClient } from "../../src/engine/types";
import type { CreateServerOptions, FastGenServer } from "../../src/server/serverTypes";
import { createServer } from "../../src/server/httpServer";
import type { FakeEngineOptions } from "./fakeEngine";
import { FakeEngine } from "./fakeEngine";

export interface TestServer<E extends EngineClient = FakeEngine> {
  engine: E;
  server: FastGenServer;
  url: string;
  client: OpenAI;
  /** POSTs JSON (or a raw string) and returns the raw response. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

export async function startTestServer(
  options: Omit<CreateServerOptions, "engine"> = {},
  engineOptions: FakeEngineOptions = {},
): Promise<TestServer> {
  return serveEngine(new FakeEngine(engineOptions), options);
}

/** Serves `engine` (which the caller shuts down; close() only stops the server). */
export async function serveEngine<E extends EngineClient>(engine: E, options: Omit<CreateServerOptions, "engine"> = {}): Promise<TestServer<E>> {
  const server = createServer({ engine, ...options });
  const { url } = await server.listen("127.0.0.1", 0);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: options.apiKey ?? "unused", maxRetries: 0 });
  const auth: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  return {
    engine,
    server,
    url,
    client,
    post: (path, body, headers = {}) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth, ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    close: () => server.stop(),
  };
}

/** Resolves once `cond()` holds (polling), or fails after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await Bun.sleep(5);
  }
}

/** The `data:` payloads of an SSE body, in order. */
export async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((e) => e.trim() !== "")
    .map((e) => {
      if (!e.startsWith("data: ")) throw new Error(`not an SSE data event: ${JSON.stringify(e)}`);
      return e.slice("data: ".length);
    });
}
