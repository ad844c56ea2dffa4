/**
 * Raw TCP clients for the hostile-client tests: a socket that writes what it is told (headers
 * without their body, a body a byte at a time, pipelined requests), never reads unless asked, and
 * records what came back and when it was closed.
 */
import net from "node:net";

/** One raw connection to a server. */
export interface RawClient {
  socket: net.Socket;
  /** Everything received so far (when reading). */
  readonly received: string;
  /** performance.now() when the server closed it; -1 while open. */
  readonly closedAt: number;
  /** Resolves once the socket is closed. */
  closed: Promise<void>;
  write(data: string): void;
}

/** Connects to `url`'s host and port; `read: false` leaves the socket paused (a client that never reads). */
export function rawConnect(url: string, { read = true } = {}): Promise<RawClient> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let received = "";
    let closedAt = -1;
    let onClose!: () => void;
    const closed = new Promise<void>((r) => (onClose = r));
    socket.on("data", (d) => (received += d.toString("latin1")));
    socket.on("close", () => {
      closedAt = performance.now();
      onClose();
    });
    socket.on("error", () => {}); // a reset is an outcome the tests look at, not a failure
    socket.once("connect", () => {
      if (!read) socket.pause();
      resolve({
        socket,
        get received() {
          return received;
        },
        get closedAt() {
          return closedAt;
        },
        closed,
        write: (data) => void socket.write(data),
      });
    });
    socket.once("error", reject);
  });
}

/** A request head (HTTP/1.1, Host, JSON content type) with any extra header lines. */
export function requestHead(method: string, path: string, headers: Record<string, string | number> = {}): string {
  const lines = Object.entries({ host: "localhost", "content-type": "application/json", ...headers }).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`;
}

/** The status codes of the responses in `text`, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
}

/** Milliseconds a GET of `path` takes (it must answer 200). */
export async function timedGet(url: string, path = "/health"): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}${path}`);
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
  return performance.now() - t0;
}
