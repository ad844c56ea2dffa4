/**
 * One HTTP request from arrival to its last byte: its id (echoed as X-Request-Id), the generation
 * it ran (tokens, first-token time, finish reasons) and its status. It ends once the response is
 * out and, for a stream, once its generation is over too; then it is logged (one line) and the
 * server forgets it. The server's drain waits for every open trace.
 */
import type { FinishReason } from "../engine/types";
import type { LogFields } from "../ops/logger";

/** Client ids we echo: printable, no spaces or quotes, at most 128 characters. */
const SANE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/+=~-]{0,127}$/;

/** The client's X-Request-Id when it is sane, else a fresh one (32 hex digits). */
export function requestIdOf(headers: Headers): string {
  const given = headers.get("x-request-id");
  if (given !== null && SANE_ID.test(given)) return given;
  return crypto.randomUUID().replace(/-/g, "");
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export class RequestTrace {
  readonly startedAt = performance.now();
  status = 0;
  /** The OpenAI error type and code sent, for an error answer. */
  errorType: string | undefined;
  errorCode: string | undefined;
  /** The response's own id (cmpl-..., chatcmpl-...), for generation requests. */
  responseId: string | undefined;
  stream = false;
  promptTokens = 0;
  completionTokens = 0;
  /** performance.now() of the first generated token; -1 before. */
  firstTokenAt = -1;
  /** Per choice; null for one that never finished (client gone, failure: logged as "abort"). */
  finishReasons: (FinishReason | null)[] = [];
  /** The client went away before the generation was over. */
  clientGone = false;
  /** Its response closes the connection (Connection: close, asked by either side). */
  closesConnection = false;
  /** Stops the engine requests (shutdown past its deadline); set while a generation runs. */
  stopGeneration: (() => void) | null = null;
  private open = 1; // the response, plus the generation while it runs
  private endedAt = -1;

  constructor(
    readonly id: string,
    readonly method: string,
    readonly path: string,
    /** Fires when the client goes away. */
    readonly signal: AbortSignal,
    private readonly onEnd: (trace: RequestTrace) => void,
  ) {}

  get ended(): boolean {
    return this.endedAt >= 0;
  }

  /** A generation of `choices` choices started; the trace stays open until generationEnded(). */
  generationStarted(promptTokens: number, choices: number): void {
    this.open++;
    this.promptTokens = promptTokens;
    this.finishReasons = new Array<FinishReason | null>(choices).fill(null);
  }

  /** Once, when the generation is over (finished, failed or aborted). */
  generationEnded(): void {
    this.stopGeneration = null;
    this.close();
  }

  /** Once, when the response (its head, for a stream) is handed to the client. */
  responded(status: number): void {
    this.status = status;
    this.close();
  }

  private close(): void {
    if (--this.open > 0 || this.endedAt >= 0) return;
    this.endedAt = performance.now();
    this.onEnd(this);
  }

  /** The access-log fields of the finished request. */
  fields(): LogFields {
    const generated = this.finishReasons.length > 0;
    const reasons = [...new Set(this.finishReasons.map((r) => r ?? "abort"))];
    return {
      request_id: this.id,
      method: this.method,
      path: this.path,
      status: this.status,
      error_type: this.errorType,
      error_code: this.errorCode,
      response_id: this.responseId,
      stream: generated ? this.stream : undefined,
      prompt_tokens: generated ? this.promptTokens : undefined,
      completion_tokens: generated ? this.completionTokens : undefined,
      finish_reason: generated ? reasons.join(",") : undefined,
      ttft_ms: this.firstTokenAt >= 0 ? round(this.firstTokenAt - this.startedAt) : undefined,
      duration_ms: round((this.endedAt >= 0 ? this.endedAt : performance.now()) - this.startedAt),
      client_gone: this.clientGone || undefined,
    };
  }
}
