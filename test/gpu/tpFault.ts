/**
 * Run by tensorParallel.test.ts in its own process with FASTGEN_TP_FAULT_RANK=1 (rank 1 skips
 * every collective) and a short FASTGEN_TP_TIMEOUT_MS: prints one JSON line with what the first
 * and second steps returned and how long they took, whether destroy returned, and whether a
 * fresh one-GPU engine still runs afterwards.
 */
import { NativeEngine } from "../../src/native";
import { bytesOf, makeBatch, randomWeights, tensorShapes, tinySpec } from "../native/helpers";

const spec = tinySpec();
const w = randomWeights(spec, 3);
function build(tp: number): NativeEngine {
  const e = NativeEngine.create({ ...spec, tensor_parallel: tp }, "cuda");
  const shapes = tensorShapes(spec);
  for (const [name, data] of w) e.loadTensor(name, "F32", shapes.get(name)!, bytesOf(data));
  e.finalize({ numBlocks: 16, blockSize: 4 });
  return e;
}
const batch = makeBatch([{ tokens: [1, 2, 3], context: 0, blocks: [0], wants: true }]);
function timed(e: NativeEngine) {
  const t0 = performance.now();
  let error = "";
  try {
    e.step(batch);
  } catch (err) {
    error = (err as Error).message;
  }
  return { error, seconds: (performance.now() - t0) / 1000 };
}

const e = build(2);
const first = timed(e);
const second = timed(e);
e.destroy();
delete process.env.FASTGEN_TP_FAULT_RANK;
let afterwards = "ok";
try {
  const f = build(1);
  f.step(batch);
  f.destroy();
} catch (err) {
  afterwards = (err as Error).message;
}
console.log(JSON.stringify({ first, second, destroyed: true, afterwards }));
