/**
 * One streamed POST /v1/completions, timed token by token. The prompt goes as token ids (exact
 * length) or as text; `ignore_eos` + `max_tokens` make the generation length exact on servers
 * that honour them (FastGen, vLLM). Every SSE event is stamped when the bytes carrying it arrive.
 *
 * Tokens per event: with `logprobs: 0` asked for, an event's logprobs list one entry per token,
 * so held-back text (a stop-string prefix, half a UTF-8 character) is still counted at the
 * event that delivers it. Without logprobs an event with text counts as one token, and any
 * tokens usage reports beyond that count arrive with the last event.
 */
import type { ServerTarget } from "./serverApi";
import { headersOf } from "./serverApi";

/** How prompts are sent and tokens counted. */
export interface ClientMode {
  prompt: "ids" | "text";
  /** Ask for logprobs (0 alternatives) to count tokens per event exactly. */
  logprobs: boolean;
  /** OpenAI `response_format` sent with every request (structured outputs under load). */
  responseFormat?: unknown;
}

/** What one streamed request saw. Times are performance.now() milliseconds. */
export interface StreamTiming {
  status: number;
  startMs: number;
  endMs: number;
  /** Arrival time of every output token, in order. */
  tokenMs: number[];
  /** usage.prompt_tokens, when the server sent usage. */
  promptTokens?: number;
  /** usage.prompt_tokens_details.cached_tokens (prefix-cache hits), when the server sent it. */
  cachedTokens?: number;
  error?: string;
}

interface CompletionChunk {
  error?: { message?: string };
  choices?: { text?: string; logprobs?: { tokens?: unknown[] } | null; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } | null } | null;
}

/** The request body of one completion. */
export function completionBody(model: string, prompt: number[] | string, maxTokens: number, mode: ClientMode): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model,
    prompt,
    max_tokens: maxTokens,
    ignore_eos: true,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (mode.logprobs) body.logprobs = 0;
  if (mode.responseFormat !== undefined) body.response_format = mode.responseFormat;
  return body;
}

/** Sends one streamed completion and times its tokens; never throws (failures land in `error`). */
export async function streamCompletion(
  target: ServerTarget,
  model: string,
  prompt: number[] | string,
  maxTokens: number,
  mode: ClientMode,
): Promise<StreamTiming> {
  const startMs = performance.now();
  const timing: StreamTiming = { status: 0, startMs, endMs: startMs, tokenMs: [] };
  let completionTokens: number | undefined;
  try {
    const res = await fetch(`${target.baseUrl}/v1/completions`, {
      method: "POST",
      headers: headersOf(target),
      body: JSON.stringify(completionBody(model, prompt, maxTokens, mode)),
    });
    timing.status = res.status;
    if (!res.ok || res.body === null) {
      const text = await res.text();
      timing.error = `HTTP ${res.status}: ${errorMessage(text)}`;
      return timing;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let done = false;
    while (!done) {
      const { value, done: ended } = await reader.read();
      const now = performance.now();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut: number;
      while (!done && (cut = buffer.indexOf("\n\n")) >= 0) {
        const data = eventData(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (data === null) continue;
        if (data === "[DONE]") {
          done = true;
          break;
        }
        const chunk = JSON.parse(data) as CompletionChunk;
        if (chunk.error) {
          timing.error = `stream error: ${chunk.error.message ?? "unknown"}`;
          continue;
        }
        for (const choice of chunk.choices ?? []) {
          const n = mode.logprobs && Array.isArray(choice.logprobs?.tokens) ? choice.logprobs!.tokens!.length : choice.text ? 1 : 0;
          for (let i = 0; i < n; i++) timing.tokenMs.push(now);
        }
        if (chunk.usage) {
          timing.promptTokens = chunk.usage.prompt_tokens;
          const cached = chunk.usage.prompt_tokens_details?.cached_tokens;
          if (cached !== undefined) timing.cachedTokens = cached;
          completionTokens = chunk.usage.completion_tokens;
        }
      }
    }
    await reader.cancel().catch(() => {});
  } catch (e) {
    timing.error = `request failed: ${(e as Error).message}`;
  }
  timing.endMs = performance.now();
  // Tokens usage counted but no event announced (text-counting mode): they came by the end.
  const missing = (completionTokens ?? 0) - timing.tokenMs.length;
  for (let i = 0; i < missing; i++) timing.tokenMs.push(timing.endMs);
  return timing;
}

/** The `data:` payload of one SSE event (multi-line data joined), or null for comments/empty. */
function eventData(event: string): string | null {
  const lines = event.split("\n").filter((l) => l.startsWith("data:"));
  if (lines.length === 0) return null;
  return lines.map((l) => l.slice(5).replace(/^ /, "")).join("\n");
}

function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: string }; message?: string };
    return (body.error?.message ?? body.message ?? text).slice(0, 300);
  } catch {
    return text.slice(0, 300);
  }
}
