/**
 * Packing of the fastgen.h structs that cross the boundary. Byte offsets come from the library
 * itself (fg_abi_layout, checked against abi.ts when it loads), never from this file.
 */
import { ptr } from "bun:ffi";
import type { FieldOf } from "./abi";
import { FastgenError, Status } from "./errors";
import { layout } from "./lib";
import type { Backend, EngineInfo, KvConfig, LateMasks, StepBatch } from "./types";

type Typed = Int32Array | Uint32Array | Float32Array | Float64Array | BigUint64Array | BigInt64Array | Uint8Array;

/**
 * Address of a typed array's first element, or 0 for a missing or empty one, for a pointer stored
 * in a struct that a later FFI call reads. Reading `.buffer` first moves a small typed array's
 * storage out of the garbage-collected heap: Bun was seen to relocate it between ptr() and the
 * call, and the library then read or wrote the old copy.
 */
export function addr(a: Typed | undefined | null): number {
  if (!a || a.length === 0) return 0;
  void a.buffer;
  return ptr(a);
}

function invalid(message: string): never {
  throw new FastgenError(Status.INVALID_ARGUMENT, message);
}

function needLength(name: string, a: Typed | undefined, n: number): void {
  if (!a) {
    if (n > 0) invalid(`fg_step: ${name} is missing`);
    return;
  }
  if (a.length < n) invalid(`fg_step: ${name} has ${a.length} entries, needs ${n}`);
}

/** A CSR indptr of numSeqs + 1 entries and its index array holding indptr[numSeqs] entries. */
function needCsr(name: string, indptr: Int32Array, values: Typed[], valueNames: string[], numSeqs: number) {
  needLength(name, indptr, numSeqs + 1);
  const total = indptr[numSeqs]!;
  values.forEach((v, i) => needLength(valueNames[i]!, v, total));
}

/** fg_batch pointer fields and the StepBatch arrays they point at. */
const BATCH_POINTERS: [FieldOf<"fg_batch">, keyof StepBatch][] = [
  ["token_ids", "tokenIds"], ["positions", "positions"], ["cu_seqlens", "cuSeqlens"],
  ["context_lens", "contextLens"], ["block_indptr", "blockIndptr"], ["block_indices", "blockIndices"],
  ["row_indptr", "rowIndptr"], ["row_tokens", "rowTokens"], ["row_targets", "rowTargets"],
  ["row_masks", "rowMasks"], ["masks", "masks"], ["temperature", "temperature"], ["top_p", "topP"],
  ["top_k", "topK"], ["min_p", "minP"], ["seed", "seed"], ["presence_penalty", "presencePenalty"],
  ["frequency_penalty", "frequencyPenalty"], ["repetition_penalty", "repetitionPenalty"],
  ["penalty_indptr", "penaltyIndptr"], ["penalty_ids", "penaltyIds"],
  ["penalty_prompt_lens", "penaltyPromptLens"], ["penalty_slots", "penaltySlots"],
  ["penalty_slot_keep", "penaltySlotKeep"], ["logit_bias_indptr", "logitBiasIndptr"],
  ["logit_bias_ids", "logitBiasIds"], ["logit_bias_values", "logitBiasValues"],
];

/** Sample rows of a batch: rowIndptr[numSeqs]. */
export function numRows(batch: StepBatch): number {
  return batch.rowIndptr[batch.cuSeqlens.length - 1] ?? 0;
}

/**
 * Packs a StepBatch into an fg_batch. The bounds of every array are checked here, since the
 * library trusts the counts it is given; the caller must keep `batch` alive during the call.
 * vocab sizes the masks (ceil(vocab / 32) words each; 0 when the call has no vocabulary).
 */
export function packBatch(batch: StepBatch, vocab: number): Uint8Array {
  const numTokens = batch.tokenIds.length;
  const numSeqs = batch.cuSeqlens.length - 1;
  if (numSeqs < 0) invalid("fg_step: cuSeqlens must have numSeqs + 1 entries");
  needLength("positions", batch.positions, numTokens);
  for (const name of ["contextLens", "temperature", "topP", "topK", "minP", "seed"] as const)
    needLength(name, batch[name], numSeqs);
  for (const name of ["presencePenalty", "frequencyPenalty", "repetitionPenalty"] as const)
    if (batch[name]) needLength(name, batch[name], numSeqs);
  if (batch.penaltyPromptLens) needLength("penaltyPromptLens", batch.penaltyPromptLens, numSeqs);
  if (batch.penaltySlots) {
    needLength("penaltySlots", batch.penaltySlots, numSeqs);
    needLength("penaltySlotKeep", batch.penaltySlotKeep, numSeqs);
  }
  needCsr("blockIndptr", batch.blockIndptr, [batch.blockIndices], ["blockIndices"], numSeqs);
  needCsr("rowIndptr", batch.rowIndptr, [batch.rowTokens], ["rowTokens"], numSeqs);
  const rows = numRows(batch);
  if (batch.rowTargets) needLength("rowTargets", batch.rowTargets, rows);
  if (batch.rowMasks) needLength("rowMasks", batch.rowMasks, rows);
  const maskWords = Math.ceil(vocab / 32);
  const numMasks = batch.masks && maskWords > 0 ? Math.floor(batch.masks.length / maskWords) : 0;
  if (batch.penaltyIndptr)
    needCsr("penaltyIndptr", batch.penaltyIndptr, [batch.penaltyIds!], ["penaltyIds"], numSeqs);
  if (batch.logitBiasIndptr)
    needCsr("logitBiasIndptr", batch.logitBiasIndptr, [batch.logitBiasIds!, batch.logitBiasValues!],
      ["logitBiasIds", "logitBiasValues"], numSeqs);

  const L = layout().fg_batch;
  const o = L.offset;
  const bytes = new Uint8Array(L.size);
  const view = new DataView(bytes.buffer);
  view.setInt32(o.num_tokens, numTokens, true);
  view.setInt32(o.num_seqs, numSeqs, true);
  view.setInt32(o.num_rows, rows, true);
  view.setInt32(o.num_masks, numMasks, true);
  view.setInt32(o.num_logprobs, batch.numLogprobs ?? 0, true);
  for (const [field, key] of BATCH_POINTERS)
    view.setBigUint64(o[field], BigInt(addr(batch[key] as Typed | undefined)), true);
  return bytes;
}

/**
 * fg_step_late: the sample rows' masks for fg_step_finish (fastgen.h), or null when none arrived
 * late. The caller keeps `late`'s arrays alive during the call.
 */
export function packLate(late: LateMasks | undefined, numRows: number, vocab: number): Uint8Array | null {
  if (!late) return null;
  needLength("late rowMasks", late.rowMasks, numRows);
  const maskWords = Math.ceil(vocab / 32);
  const L = layout().fg_step_late;
  const bytes = new Uint8Array(L.size);
  const view = new DataView(bytes.buffer);
  view.setInt32(L.offset.num_masks, maskWords > 0 ? Math.floor(late.masks.length / maskWords) : 0, true);
  // A row-less batch still hands over a late list: a non-null pointer says "masks came late".
  view.setBigUint64(L.offset.row_masks, BigInt(addr(late.rowMasks.length > 0 ? late.rowMasks : NON_NULL)), true);
  view.setBigUint64(L.offset.masks, BigInt(addr(late.masks)), true);
  return bytes;
}

/** Stands in for an empty late rowMasks (ptr() of an empty array is not allowed). */
const NON_NULL = new Int32Array(1);

/** fg_step_output from the addresses of the outputs wanted (0 or absent for the others). */
export function packOutputs(ptrs: Partial<Record<FieldOf<"fg_step_output">, number>>): Uint8Array {
  const L = layout().fg_step_output;
  const bytes = new Uint8Array(L.size);
  const view = new DataView(bytes.buffer);
  for (const [field, p] of Object.entries(ptrs) as [FieldOf<"fg_step_output">, number][])
    view.setBigUint64(L.offset[field], BigInt(p), true);
  return bytes;
}

/** fg_dtype FG_F8_E4M3. */
const FG_F8_E4M3 = 3;

/**
 * fg_kv_config; its k_scales / v_scales point into kv's arrays, so the caller keeps `kv` alive
 * during the call.
 */
export function packKvConfig(kv: KvConfig = {}): Uint8Array {
  if (kv.kvCacheDtype !== undefined && kv.kvCacheDtype !== "auto" && kv.kvCacheDtype !== "fp8")
    invalid(`kvCacheDtype must be "auto" or "fp8", got ${JSON.stringify(kv.kvCacheDtype)}`);
  const L = layout().fg_kv_config;
  const bytes = new Uint8Array(L.size);
  const view = new DataView(bytes.buffer);
  view.setInt32(L.offset.block_size, kv.blockSize ?? 0, true);
  view.setInt32(L.offset.num_blocks, kv.numBlocks ?? 0, true);
  view.setFloat32(L.offset.memory_fraction, kv.memoryFraction ?? 0, true);
  view.setBigUint64(L.offset.max_kv_bytes, BigInt(Math.floor(kv.maxKvBytes ?? 0)), true);
  view.setInt32(L.offset.kv_dtype, kv.kvCacheDtype === "fp8" ? FG_F8_E4M3 : 0, true);
  for (const [field, scales] of [["k_scales", kv.kScales], ["v_scales", kv.vScales]] as const)
    view.setBigUint64(L.offset[field], BigInt(addr(scales)), true);
  return bytes;
}

/** A zeroed fg_engine_info for fg_engine_get_info to fill. */
export function infoBuffer(): Uint8Array {
  return new Uint8Array(layout().fg_engine_info.size);
}

export function readInfo(bytes: Uint8Array): EngineInfo {
  const o = layout().fg_engine_info.offset;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const backends: Backend[] = ["cpu", "cuda"];
  return {
    numBlocks: view.getInt32(o.num_blocks, true),
    blockSize: view.getInt32(o.block_size, true),
    vocabSize: view.getInt32(o.vocab_size, true),
    maxPositionEmbeddings: view.getInt32(o.max_position_embeddings, true),
    backend: backends[view.getInt32(o.backend, true)] ?? "cpu",
    numThreads: view.getInt32(o.num_threads, true),
    weightBytes: Number(view.getBigUint64(o.weight_bytes, true)),
    kvBytes: Number(view.getBigUint64(o.kv_bytes, true)),
  };
}
