/**
 * How AsyncEngine reaches its engine host (engineHost.ts): a Bun Worker in this process, or a
 * child process (`fastgen engine-process`) over Bun's IPC channel. Both carry the messages of
 * workerProtocol.ts; the child uses "advanced" serialization (structured clone), so deltas keep
 * what JSON would lose (a logprob of -Infinity, undefined fields).
 *
 *   Worker: a native crash takes the whole server down; no spawn cost (pipeline(), library use).
 *   child:  a native crash kills the child only; `onExit` fires and the supervisor restarts it.
 */
import { fastgenCommand } from "./fastgenCommand";
import type { FromWorker, ToWorker } from "./workerProtocol";
import { envVar } from "../envVars";

/** A channel to an engine host. */
export interface EngineTransport {
  post(m: ToWorker): void;
  /**
   * Sets the handlers: every message from the host, and once, `onExit` when the host died without
   * being terminated (a crash; `reason` says how).
   */
  listen(onMessage: (m: FromWorker) => void, onExit: (reason: string) => void): void;
  /** Ends the host now (after a shutdown, or one that does not answer). */
  terminate(): void;
  /** Pid of the child process (undefined for a Worker). */
  readonly pid?: number;
}

/**
 * The Worker's entry: this folder's engineWorker.ts, or in the single binary (scripts/compile.ts
 * passes it as a second entry point) the path it was bundled under.
 */
function workerEntry(): string {
  // bun build --compile roots the bundle at src/ (the entry points' common folder).
  if (envVar("FASTGEN_COMPILED")) return "/$bunfs/root/engine/engineWorker.js";
  return new URL("./engineWorker.ts", import.meta.url).href;
}

/** An engine host in a Bun Worker of this process. */
export function workerTransport(): EngineTransport {
  // The env is passed explicitly: the single binary sets FASTGEN_LIB after start-up.
  const worker = new Worker(workerEntry(), { env: { ...process.env } } as WorkerOptions);
  let terminated = false;
  return {
    post: (m) => worker.postMessage(m),
    listen(onMessage, onExit) {
      worker.onmessage = (ev: MessageEvent<FromWorker>) => onMessage(ev.data);
      worker.onerror = (ev) => {
        if (!terminated) onExit(ev.message);
      };
    },
    terminate() {
      terminated = true;
      worker.terminate();
    },
  };
}

/** An engine host in a child process (`fastgen engine-process`); its stderr is this one's. */
export function processTransport(env: Record<string, string | undefined> = process.env): EngineTransport {
  let onMessage: (m: FromWorker) => void = () => {};
  let onExit: (reason: string) => void = () => {};
  let terminated = false;
  const child = Bun.spawn([...fastgenCommand(), "engine-process"], {
    env: { ...env },
    stdin: "ignore",
    stdout: "inherit",
    stderr: "inherit",
    serialization: "advanced",
    ipc: (m: FromWorker) => onMessage(m),
  });
  void child.exited.then((code) => {
    if (terminated) return;
    onExit(child.signalCode ? `the engine process was killed by ${child.signalCode}` : `the engine process exited with status ${code}`);
  });
  return {
    pid: child.pid,
    post(m) {
      if (terminated || child.exitCode !== null || child.signalCode !== null) return;
      try {
        child.send(m);
      } catch {} // it just died: onExit tells
    },
    listen(message, exit) {
      onMessage = message;
      onExit = exit;
    },
    terminate() {
      terminated = true;
      child.kill("SIGKILL");
    },
  };
}
