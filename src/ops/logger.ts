/**
 * The server's log lines, as text for people or one JSON object per line for log pipelines
 * (`--log-format text|json`). Two streams, as in vLLM: diagnostics (loading, warnings, shutdown)
 * go to stderr; the ready line and the one-line-per-request access log go to stdout.
 *
 *   text  fastgen: request request_id=4f.. method=POST path=/v1/completions status=200 ...
 *   json  {"ts":"2025-01-01T00:00:00.000Z","level":"info","msg":"request","request_id":"4f..",...}
 */

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevel = "info" | "warn" | "error";

/** Structured fields of a line; undefined ones are left out. */
export type LogFields = Record<string, unknown>;

/** Where lines go: `out` is stdout, `err` stderr (tests hand in arrays). */
export interface LogSink {
  out(line: string): void;
  err(line: string): void;
}

/** stdout / stderr, a line each (through console, so tests that spy on it see the lines). */
export const STD_SINK: LogSink = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/** A sink that drops everything (createServer's default: tests and embedders log nothing). */
export const NULL_SINK: LogSink = { out: () => {}, err: () => {} };

/**
 * An Error as log fields: its name and message, and its stack (it stays in the server's log) unless
 * it is an ApiError, an answer already given to the client, whose stack says nothing.
 */
export function errorFields(e: unknown): LogFields {
  if (!(e instanceof Error)) return { error: String(e) };
  return { error: e.message, error_name: e.name, stack: e.name === "ApiError" ? undefined : e.stack };
}

/** A text value: bare when it is one plain word, JSON-quoted otherwise. */
function textValue(v: unknown): string {
  if (typeof v === "string") return /^[\w./:@+,-]+$/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number")) return v.join(",");
  return JSON.stringify(v) ?? String(v);
}

export class Logger {
  constructor(
    readonly format: LogFormat = "text",
    private readonly sink: LogSink = STD_SINK,
    private readonly now: () => Date = () => new Date(),
  ) {}

  info(msg: string, fields?: LogFields): void {
    this.sink.err(this.line("info", msg, fields));
  }

  warn(msg: string, fields?: LogFields): void {
    this.sink.err(this.line("warn", msg, fields));
  }

  error(msg: string, fields?: LogFields): void {
    this.sink.err(this.line("error", msg, fields));
  }

  /** A line for stdout: the ready line that scripts wait for, and the access log. */
  out(msg: string, fields?: LogFields): void {
    this.sink.out(this.line("info", msg, fields));
  }

  /** Formats one line (no newline); in text, an error's stack follows on the next lines. */
  line(level: LogLevel, msg: string, fields: LogFields = {}): string {
    const defined = Object.entries(fields).filter(([, v]) => v !== undefined);
    if (this.format === "json") {
      const obj: LogFields = { ts: this.now().toISOString(), level, msg };
      for (const [k, v] of defined) obj[k] = v;
      return JSON.stringify(obj);
    }
    const prefix = level === "info" ? "fastgen: " : `fastgen: ${level}: `;
    const parts = defined.filter(([k]) => k !== "stack").map(([k, v]) => `${k}=${textValue(v)}`);
    const stack = fields.stack;
    const text = `${prefix}${msg}${parts.length > 0 ? ` ${parts.join(" ")}` : ""}`;
    return typeof stack === "string" ? `${text}\n${stack}` : text;
  }
}

/** A logger that writes nothing. */
export const silentLogger = () => new Logger("text", NULL_SINK);
