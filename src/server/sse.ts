/**
 * Server-sent events for streamed completions: one `data: {json}` event per chunk, then
 * `data: [DONE]`. An error after the stream began is sent as an OpenAI error event before [DONE]
 * (the status line is already out). A client that goes away cancels the stream: `onCancel` runs.
 * The Responses API's flavour (SseStyle): each event named after its `type`, no [DONE], and its
 * own error event.
 */
import { ApiError, internalError } from "./errors";

const encoder = new TextEncoder();

/** How events are written: Chat Completions' (the default) or the Responses API's. */
export interface SseStyle {
  /** Writes `event: <chunk.type>` before each data line. */
  named: boolean;
  /** Ends with `data: [DONE]`. */
  done: boolean;
  /** The body of the event sent for an error after the stream began. */
  errorBody(err: ApiError): unknown;
}

const CHAT_STYLE: SseStyle = { named: false, done: true, errorBody: (err) => err.toBody() };

/** A text/event-stream response over `chunks`. */
export function sseResponse(
  chunks: AsyncIterable<unknown>,
  onCancel: () => void,
  onError: (e: unknown) => void,
  style: SseStyle = CHAT_STYLE,
): Response {
  const event = (data: string, value?: unknown) => {
    const type = style.named ? (value as { type?: unknown } | undefined)?.type : undefined;
    return encoder.encode(`${typeof type === "string" ? `event: ${type}\n` : ""}data: ${data}\n\n`);
  };
  const it = chunks[Symbol.asyncIterator]();
  let state: "open" | "done" | "cancelled" = "open";
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let data: string | null; // null: the chunks have ended
      let value: unknown;
      let failed = false;
      try {
        const next = await it.next();
        value = next.value;
        data = next.done ? null : JSON.stringify(value);
      } catch (e) {
        onError(e);
        value = style.errorBody(e instanceof ApiError ? e : internalError());
        data = JSON.stringify(value);
        failed = true;
      }
      if (state === "cancelled") return; // the client left while we waited
      if (data !== null) controller.enqueue(event(data, value));
      if (data === null || failed) {
        state = "done";
        if (style.done) controller.enqueue(event("[DONE]"));
        controller.close();
      }
    },
    cancel() {
      if (state !== "open") return;
      state = "cancelled";
      onCancel();
      void it.return?.()?.catch(() => {});
    },
  });
  return new Response(stream, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" },
  });
}
