/**
 * Progress on stderr while a sweep runs: a bar redrawn in place on a TTY, or a plain line per
 * quarter of a point (and at its end) when stderr is a file or a pipe (CI logs stay readable).
 */

/** Receives progress of a sweep. */
export interface ProgressSink {
  /** A point starts: `requests` to send at `clients` clients (point `k` of `of`). */
  startPoint(clients: number, requests: number, k: number, of: number): void;
  /** One request ended. */
  requestDone(failed: boolean): void;
  /** The point ended; `line` sums it up. */
  endPoint(line: string): void;
  /** A free-form note (negotiation, warm-up). */
  note(line: string): void;
}

/** Prints nothing. */
export const silentProgress: ProgressSink = { startPoint() {}, requestDone() {}, endPoint() {}, note() {} };

/** The bar for `done` of `total` in `width` cells. */
export function bar(done: number, total: number, width = 24): string {
  const full = total > 0 ? Math.round((done / total) * width) : width;
  return "█".repeat(full) + "░".repeat(width - full);
}

/** Progress for stream `out` (process.stderr): in place on a TTY, plain lines otherwise. */
export function streamProgress(label: string, out: { write(s: string): unknown; isTTY?: boolean } = process.stderr): ProgressSink {
  const tty = out.isTTY === true;
  let clients = 0;
  let total = 0;
  let done = 0;
  let failed = 0;
  let k = 0;
  let of = 0;
  let t0 = 0;
  let lastQuarter = 0;
  const status = () => {
    const s = (performance.now() - t0) / 1000;
    const fail = failed > 0 ? `, ${failed} failed` : "";
    return `${label} clients ${clients} (${k}/${of}) ${bar(done, total)} ${done}/${total} requests, ${(done / Math.max(s, 1e-9)).toFixed(2)} req/s, ${s.toFixed(0)}s${fail}`;
  };
  return {
    startPoint(c, n, kk, ofN) {
      [clients, total, done, failed, k, of, t0, lastQuarter] = [c, n, 0, 0, kk, ofN, performance.now(), 0];
      if (tty) out.write(`\r\x1b[K${status()}`);
      else out.write(`${label}: clients ${c} (${kk}/${ofN}), ${n} requests\n`);
    },
    requestDone(f) {
      done++;
      if (f) failed++;
      if (tty) out.write(`\r\x1b[K${status()}`);
      else {
        const quarter = Math.floor((4 * done) / total);
        if (quarter > lastQuarter && done < total) out.write(`  ${status()}\n`);
        lastQuarter = quarter;
      }
    },
    endPoint(line) {
      out.write(tty ? `\r\x1b[K${line}\n` : `  ${line}\n`);
    },
    note(line) {
      out.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`);
    },
  };
}
