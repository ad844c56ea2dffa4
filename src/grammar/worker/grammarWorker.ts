/**
 * Entry of the grammar Worker (grammarClient.ts starts it on an engine's first constrained
 * request): a GrammarService behind the message port. Messages are handled one at a time, in
 * order (protocol.ts). scripts/compile.ts bundles this file as an entry point of the single binary.
 */
import { GrammarService } from "./grammarService";
import { unpackSyncs, type FromGrammarWorker, type ToGrammarWorker } from "./protocol";

declare const self: Worker;

let service: GrammarService | null = null;
let queue: Promise<void> = Promise.resolve();
/** TEST ONLY: the flag the next create blocks on (debug-hold inCompile). */
let holdNextCompile: SharedArrayBuffer | null = null;

function reply(m: FromGrammarWorker, transfer: Transferable[] = []): void {
  self.postMessage(m, transfer);
}

/** XGrammar throws C++ exceptions as numbers or strings through WebAssembly. */
function errorOf(id: number, e: unknown): FromGrammarWorker {
  const err = e instanceof Error ? e : new Error(typeof e === "string" ? e : `XGrammar error ${String(e)}`);
  return { type: "error", id, name: err.name, message: err.message };
}

async function handle(m: ToGrammarWorker): Promise<void> {
  switch (m.type) {
    case "init": {
      const t0 = performance.now();
      try {
        service = await GrammarService.create(m.source, m.stopTokenIds, m.cacheSize);
        reply({ type: "ready", tokenizerInfoMs: performance.now() - t0, words: service.words });
      } catch (e) {
        reply({ type: "init-error", message: e instanceof Error ? e.message : String(e) });
      }
      return;
    }
    case "create":
      reply({ type: "compiling", id: m.id });
      if (holdNextCompile !== null) {
        Atomics.wait(new Int32Array(holdNextCompile), 0, 1);
        holdNextCompile = null;
      }
      try {
        reply({ type: "created", id: m.id, ...(await service!.create(m.spec, m.n)) });
      } catch (e) {
        reply(errorOf(m.id, e));
      }
      return;
    case "masks":
      try {
        const t0 = performance.now();
        const { masks, refused } = await service!.masks(unpackSyncs(m.syncs));
        reply({ type: "masks", id: m.id, masks, refused, ms: performance.now() - t0 }, [masks.buffer]);
      } catch (e) {
        reply(errorOf(m.id, e));
      }
      return;
    case "release":
      service?.release(m.matchers);
      return;
    case "debug-hold":
      if (m.inCompile) holdNextCompile = m.flag;
      else Atomics.wait(new Int32Array(m.flag), 0, 1);
      return;
    case "debug-crash":
      setTimeout(() => {
        throw new Error("grammar worker: crash asked for by a test");
      });
      return;
  }
}

self.onmessage = (ev: MessageEvent<ToGrammarWorker>) => {
  const m = ev.data;
  queue = queue.then(() => handle(m));
};
