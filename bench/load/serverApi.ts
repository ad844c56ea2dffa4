/**
 * What the load generator needs from a server besides completions: its model name and context
 * (GET /v1/models) and a tokenizer to cut exact-length prompts with. The tokenizer is a local
 * tokenizer.json when given, else the server's vLLM-style /tokenize and /detokenize routes.
 */
import { Tokenizer } from "../../src/tokenizer/tokenizer";

/** A server to load. */
export interface ServerTarget {
  /** Base URL without /v1 (http://127.0.0.1:8000). */
  baseUrl: string;
  apiKey?: string;
}

/** What GET /v1/models said. */
export interface ServerInfo {
  model: string;
  /** owned_by of the model card ("fastgen", "vllm", ...), when given. */
  ownedBy?: string;
  /** max_model_len of the model card, when given. */
  maxModelLen?: number;
}

/** Encodes and decodes text the way the server does. */
export interface TokenizerAccess {
  /** Where the ids come from ("local DIR" or "server /tokenize"). */
  source: string;
  encode(text: string): Promise<number[]>;
  decode(ids: number[]): Promise<string>;
}

/** http://host:port[/v1][/] → http://host:port */
export function normalizeBaseUrl(url: string): string {
  let u = url.trim().replace(/\/+$/, "");
  if (u.endsWith("/v1")) u = u.slice(0, -3);
  if (!/^https?:\/\//.test(u)) u = `http://${u}`;
  return u;
}

/** Headers of every request (JSON, plus the bearer key when there is one). */
export function headersOf(target: ServerTarget): Record<string, string> {
  const h: Record<string, string> = { "content-type": "application/json" };
  if (target.apiKey) h.authorization = `Bearer ${target.apiKey}`;
  return h;
}

async function postJson(target: ServerTarget, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${target.baseUrl}${path}`, { method: "POST", headers: headersOf(target), body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** GET /v1/models: the first model (or the one called `model`). */
export async function probeServer(target: ServerTarget, model?: string): Promise<ServerInfo> {
  let res: Response;
  try {
    res = await fetch(`${target.baseUrl}/v1/models`, { headers: headersOf(target) });
  } catch (e) {
    throw new Error(`cannot reach ${target.baseUrl}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new Error(`GET ${target.baseUrl}/v1/models: HTTP ${res.status}`);
  const body = (await res.json()) as { data?: { id: string; owned_by?: string; max_model_len?: number }[] };
  const cards = body.data ?? [];
  const card = model === undefined ? cards[0] : cards.find((c) => c.id === model);
  if (card === undefined && model === undefined) throw new Error(`${target.baseUrl}/v1/models lists no model`);
  return {
    model: card?.id ?? model!,
    ownedBy: card?.owned_by,
    maxModelLen: typeof card?.max_model_len === "number" ? card.max_model_len : undefined,
  };
}

/** A tokenizer.json directory on this machine. */
export function localTokenizer(dir: string): TokenizerAccess {
  const tok = Tokenizer.fromDir(dir);
  return {
    source: `local ${dir}`,
    encode: async (text) => tok.encode(text, { addSpecialTokens: false }),
    decode: async (ids) => tok.decode(ids),
  };
}

/** The server's /tokenize and /detokenize (vLLM's shapes; FastGen has them too). */
export function serverTokenizer(target: ServerTarget, model: string): TokenizerAccess {
  return {
    source: "server /tokenize",
    async encode(text) {
      const body = await postJson(target, "/tokenize", { model, prompt: text, add_special_tokens: false });
      if (!Array.isArray(body.tokens)) throw new Error("/tokenize answered without 'tokens'");
      return body.tokens as number[];
    },
    async decode(ids) {
      const body = await postJson(target, "/detokenize", { model, tokens: ids });
      if (typeof body.prompt !== "string") throw new Error("/detokenize answered without 'prompt'");
      return body.prompt;
    },
  };
}
