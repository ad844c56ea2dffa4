/**
 * Entry of a tokenizer Worker (tokenizerPool.ts): builds the tokenizer from the source it is sent
 * first, then runs each task (tokenizerTasks.ts) and answers with the ids as a transferred Int32Array.
 */
import type { FromTokenizerWorker, ToTokenizerWorker } from "./tokenizerPool";
import { Tokenizer } from "./tokenizer";
import { runTask, toTaskError } from "./tokenizerTasks";

declare const self: Worker;

let tokenizer: Tokenizer | null = null;

function reply(m: FromTokenizerWorker, transfer: Transferable[] = []): void {
  self.postMessage(m, transfer);
}

self.onmessage = (ev: MessageEvent<ToTokenizerWorker>) => {
  const m = ev.data;
  if (m.type === "init") {
    try {
      tokenizer = "dir" in m.source ? Tokenizer.fromDir(m.source.dir) : Tokenizer.fromJSON(m.source.files);
    } catch (e) {
      reply({ type: "init-error", message: (e as Error).message });
    }
    return;
  }
  if (tokenizer === null) return; // init failed and said so; the pool replaces this worker
  try {
    const result = runTask(tokenizer, m.task);
    const ids = Int32Array.from(result.ids);
    reply({ type: "done", id: m.id, ids, text: result.text }, [ids.buffer]);
  } catch (e) {
    reply({ type: "error", id: m.id, error: toTaskError(e) });
  }
};
