/**
 * Entry of the engine child process (`fastgen engine-process`, spawned by engineTransport.ts's
 * processTransport): the engine host of engineHost.ts behind Bun's IPC channel. A native crash
 * here kills only this process; the front end's SupervisedEngine fails its requests and restarts it.
 *
 * It ignores SIGINT and SIGTERM: a Ctrl-C or a service manager signals the whole process group,
 * and the front end must keep its engine while it drains. It leaves once it has shut down on the
 * front end's request, or when the IPC channel closes because the front end is gone.
 */
import { createEngineHost } from "./engineHost";
import type { FromWorker, ToWorker } from "./workerProtocol";

/** Serves the protocol until shut down; resolves when the process may exit. */
export function runEngineChild(): Promise<void> {
  if (typeof process.send !== "function") throw new Error("engine-process is only started by `fastgen serve` (it needs an IPC channel)");
  const ignore = () => {};
  process.on("SIGINT", ignore);
  process.on("SIGTERM", ignore);
  // Nobody is left to serve (the front end's connections died with it): no drain.
  const orphaned = () => process.exit(0);
  process.once("disconnect", orphaned);
  return new Promise<void>((resolve) => {
    const send = (m: FromWorker) => {
      try {
        process.send!(m);
      } catch {
        return; // the front end is gone: "disconnect" ends this process
      }
      if (m.type !== "closed") return;
      // Shut down as asked: closing the channel (after the message is out) lets the process exit.
      process.off("message", host);
      process.off("disconnect", orphaned);
      process.off("SIGINT", ignore);
      process.off("SIGTERM", ignore);
      process.disconnect?.();
      resolve();
    };
    const host = createEngineHost(send) as (m: ToWorker) => void;
    process.on("message", host);
  });
}
