/** NativeEngine: an owned fg_engine handle with typed methods. */
import type { Pointer } from "bun:ffi";
import type { ModelSpec } from "./modelSpec";
import { FastgenError, Status } from "./errors";
import { check, cString, lib } from "./lib";
import { addr, infoBuffer, numRows, packBatch, packKvConfig, packLate, packOutputs, readInfo } from "./structs";
import type { Backend, DType, EngineInfo, KvConfig, LateMasks, StepBatch, StepResult, WeightScales } from "./types";

const DTYPES: Record<DType, { code: number; bytes: number }> = {
  F32: { code: 0, bytes: 4 },
  F16: { code: 1, bytes: 2 },
  BF16: { code: 2, bytes: 2 },
  F8_E4M3: { code: 3, bytes: 1 },
};

/** The pass between launch() and finish(): what the library reads until finish returns. */
interface PassInFlight {
  batch: StepBatch;
  packed: Uint8Array;
}

export class NativeEngine {
  #handle: Pointer | null;
  #inFlight: PassInFlight | null = null;
  #vocabSize = 0;
  /** The spec's num_layers (sizes the per-layer KV scales the library reads). */
  #numLayers = -1;

  private constructor(handle: Pointer) {
    this.#handle = handle;
  }

  /** fg_engine_create from a normalized model spec. */
  static create(spec: ModelSpec, backend: Backend = "cpu"): NativeEngine {
    const out = new BigUint64Array(1);
    const json = cString(JSON.stringify(spec));
    check(lib().fg_engine_create(json, backend === "cuda" ? 1 : 0, out));
    const engine = new NativeEngine(Number(out[0]) as Pointer);
    engine.#numLayers = spec.num_layers;
    return engine;
  }

  #live(): Pointer {
    if (this.#handle === null)
      throw new FastgenError(Status.INVALID_ARGUMENT, "NativeEngine used after destroy()");
    return this.#handle;
  }

  /**
   * Copies one tensor by canonical name; data holds prod(shape) elements of dtype. With `scales`
   * it is a quantized weight (F8_E4M3 data; fg_engine_load_quantized_tensor).
   */
  loadTensor(name: string, dtype: DType, shape: number[], data: Uint8Array, scales?: WeightScales): void {
    const handle = this.#live();
    const d = DTYPES[dtype];
    if (!d) throw new FastgenError(Status.INVALID_ARGUMENT, `loadTensor '${name}': unknown dtype ${dtype}`);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (data.byteLength !== numel * d.bytes)
      throw new FastgenError(Status.INVALID_ARGUMENT,
        `loadTensor '${name}': ${data.byteLength} bytes for shape [${shape.join(", ")}] of ${dtype} (want ${numel * d.bytes})`);
    const dims = BigInt64Array.from(shape, (x) => BigInt(x));
    if (!scales) {
      check(lib().fg_engine_load_tensor(handle, cString(name), d.code, dims.length ? dims : null,
        shape.length, data.byteLength ? data : null, data.byteLength));
      return;
    }
    const v = scales.values;
    check(lib().fg_engine_load_quantized_tensor(handle, cString(name), d.code, dims.length ? dims : null,
      shape.length, data.byteLength ? data : null, data.byteLength, v.length ? v : null, v.length,
      scales.blockRows, scales.blockCols, scales.inputScale ?? 0));
  }

  /** Checks every tensor is loaded and allocates the KV pool. */
  finalize(kv: KvConfig = {}): EngineInfo {
    const numLayers = this.#numLayers;
    for (const [which, s] of [["kScales", kv.kScales], ["vScales", kv.vScales]] as const)
      if (s && numLayers >= 0 && s.length !== numLayers)
        throw new FastgenError(Status.INVALID_ARGUMENT, `finalize: ${which} has ${s.length} entries, the model has ${numLayers} layers`);
    // `kv` (and the scale arrays the packed struct points at) stays referenced until the call returns.
    check(lib().fg_engine_finalize(this.#live(), packKvConfig(kv)));
    return this.info();
  }

  info(): EngineInfo {
    const bytes = infoBuffer();
    check(lib().fg_engine_get_info(this.#live(), bytes));
    return readInfo(bytes);
  }

  /** One forward pass over a ragged batch (see fg_step in fastgen.h); results per sample row. */
  step(batch: StepBatch): StepResult {
    const handle = this.#live();
    const packed = packBatch(batch, this.#vocab());
    const { result, outputs } = this.#outputs(batch);
    // `batch`, `result` and the packed structs stay referenced until the call returns.
    check(lib().fg_step(handle, packed, outputs));
    return result;
  }

  /**
   * Starts a forward pass (fg_step_launch): it runs while the caller goes on, until finish().
   * `batch`'s arrays must stay unchanged until then; its masks may instead come to finish().
   */
  launch(batch: StepBatch): void {
    const handle = this.#live();
    const packed = packBatch(batch, this.#vocab());
    check(lib().fg_step_launch(handle, packed));
    this.#inFlight = { batch, packed };
  }

  /** Whether a launched pass awaits finish(). */
  get inFlight(): boolean {
    return this.#inFlight !== null;
  }

  /**
   * Waits for the launched pass and samples its rows, with `late` masks when they were computed
   * after the launch (fg_step_finish); the pass is over whatever this throws.
   */
  finish(late?: LateMasks): StepResult {
    const handle = this.#live();
    const pass = this.#inFlight;
    if (pass === null) {  // the library says so too; this keeps the message in one place
      check(lib().fg_step_finish(handle, null, null));
      throw new FastgenError(Status.INTERNAL, "fg_step_finish succeeded with no pass in flight");
    }
    const { result, outputs } = this.#outputs(pass.batch);
    let packedLate: Uint8Array | null;
    try {
      packedLate = packLate(late, numRows(pass.batch), this.#vocab());
    } catch (e) {
      this.#endQuietly();
      throw e;
    }
    this.#inFlight = null;
    // `pass`, `late`, `result` and the packed structs stay referenced until the call returns.
    check(lib().fg_step_finish(handle, packedLate, outputs));
    return result;
  }

  /** Ends a launched pass without its results (its inputs could not be made); no-op when none. */
  dropPass(): void {
    this.#endQuietly();
  }

  /**
   * Ends a pass in flight, dropping its results (after a failure, or before destroy): finish with
   * no outputs waits for the pass and fails before sampling, which still ends it.
   */
  #endQuietly(): void {
    if (this.#handle === null || this.#inFlight === null) return;
    lib().fg_step_finish(this.#handle, null, null);
    this.#inFlight = null;
  }

  /** Zeroed result arrays for the batch's rows and the fg_step_output pointing at them. */
  #outputs(batch: StepBatch): { result: StepResult; outputs: Uint8Array } {
    const vocab = this.#vocab();
    const rows = numRows(batch);
    const numLogprobs = batch.numLogprobs ?? 0;
    const result: StepResult = { ids: new Int32Array(rows).fill(-1), logprobs: new Float32Array(rows).fill(NaN) };
    if (numLogprobs > 0) {
      result.topIds = new Int32Array(rows * numLogprobs).fill(-1);
      result.topLogprobs = new Float32Array(rows * numLogprobs).fill(NaN);
    }
    if (batch.returnLogits) result.logits = new Float32Array(rows * vocab).fill(NaN);
    const outputs = packOutputs({
      ids: addr(result.ids), logprobs: addr(result.logprobs), top_ids: addr(result.topIds),
      top_logprobs: addr(result.topLogprobs), logits: addr(result.logits),
    });
    return { result, outputs };
  }

  /** The vocabulary size (read once: it sizes masks and logits every step). */
  #vocab(): number {
    if (this.#vocabSize === 0) this.#vocabSize = this.info().vocabSize;
    return this.#vocabSize;
  }

  /** Test-only: the next n steps fail with FG_ERR_INTERNAL, or FG_ERR_DEVICE when `device`. */
  debugFailNextSteps(n: number, device = false): void {
    check(lib().fg_debug_fail_status(this.#live(), device ? Status.DEVICE : Status.INTERNAL));
    check(lib().fg_debug_fail_next_steps(this.#live(), n));
  }

  /** Frees the engine (after ending a pass in flight); idempotent. Any other method afterwards throws. */
  destroy(): void {
    if (this.#handle === null) return;
    this.#endQuietly();
    const handle = this.#handle;
    this.#handle = null;
    check(lib().fg_engine_destroy(handle));
  }
}
