/**
 * Server-sent events for streamed completions: one `data: {json}` event per chunk, then
 * `data: [DONE]`. An error after the stream began is sent as an OpenAI error event before [DONE]
 * (the status line is already out). A client that goes away cancels the stream: `onCancel` runs.
 */
import { ApiError, internalError } from "./errors";

const encoder = new TextEncoder();
const event = (data: string) => encoder.encode(`data: ${data}\n\n`);

/** A text/event-stream response over `chunks`. */
export function sseResponse(chunks: AsyncIterable<unknown>, onCancel: () => void, onError: (e: unknown) => void): Response {
  const it = chunks[Symbol.asyncIterator]();
  let state: "open" | "done" | "cancelled" = "open";
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let data: string | null; // null: the chunks have ended
      let failed = false;
      try {
        const { done, value } = await it.next();
        data = done ? null : JSON.stringify(value);
      } catch (e) {
        onError(e);
        data = JSON.stringify((e instanceof ApiError ? e : internalError()).toBody());
        failed = true;
      }
      if (state === "cancelled") return; // the client left while we waited
      if (data !== null) controller.enqueue(event(data));
      if (data === null || failed) {
        state = "done";
        controller.enqueue(event("[DONE]"));
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
