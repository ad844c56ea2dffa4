/**
 * Entry of the engine Worker (AsyncEngine's in-process mode): the engine host of engineHost.ts
 * behind the Worker's message port. scripts/compile.ts bundles this file as a second entry point.
 */
import { createEngineHost } from "./engineHost";
import type { FromWorker, ToWorker } from "./workerProtocol";

declare const self: Worker;

const host = createEngineHost((m: FromWorker) => self.postMessage(m));
self.onmessage = (ev: MessageEvent<ToWorker>) => void host(ev.data);
