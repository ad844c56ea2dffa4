/**
 * Byte layouts of the fastgen.h structs that cross the boundary (x86-64 / aarch64 LP64).
 * libfastgen/src/core/api.cpp static_asserts the same sizes and offsets.
 */
import { ptr } from "bun:ffi";
import { FastgenError, Status } from "./errors";
import type { Backend, EngineInfo, KvConfig, StepBatch } from "./types";

type Typed = Int32Array | Float32Array | BigUint64Array | BigInt64Array | Uint8Array;

/** Address of a typed array's first element, or 0 for a missing or empty one. */
export function addr(a: Typed | undefined | null): number {
  return a && a.length > 0 ? ptr(a) : 0;
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

// fg_batch: two i32 counts, 20 pointers, num_logprobs, _reserved, penalty_prompt_lens,
// next_token_ids.
export const BATCH_BYTES = 192;
const BATCH_POINTERS: (keyof StepBatch)[] = [
  "tokenIds", "positions", "cuSeqlens", "contextLens", "blockIndptr", "blockIndices", "wantsToken",
  "temperature", "topP", "topK", "minP", "seed", "presencePenalty", "frequencyPenalty",
  "repetitionPenalty", "penaltyIndptr", "penaltyIds", "logitBiasIndptr", "logitBiasIds",
  "logitBiasValues",
];

/**
 * Packs a StepBatch into an fg_batch. The bounds of every array are checked here, since the
 * library trusts the counts it is given; the caller must keep `batch` alive during the call.
 */
export function packBatch(batch: StepBatch): Uint8Array {
  const numTokens = batch.tokenIds.length;
  const numSeqs = batch.cuSeqlens.length - 1;
  if (numSeqs < 0) invalid("fg_step: cuSeqlens must have numSeqs + 1 entries");
  needLength("positions", batch.positions, numTokens);
  for (const name of ["contextLens", "wantsToken", "temperature", "topP", "topK", "minP", "seed"] as const)
    needLength(name, batch[name], numSeqs);
  for (const name of ["presencePenalty", "frequencyPenalty", "repetitionPenalty"] as const)
    if (batch[name]) needLength(name, batch[name], numSeqs);
  if (batch.penaltyPromptLens) needLength("penaltyPromptLens", batch.penaltyPromptLens, numSeqs);
  if (batch.nextTokenIds) needLength("nextTokenIds", batch.nextTokenIds, numTokens);
  needCsr("blockIndptr", batch.blockIndptr, [batch.blockIndices], ["blockIndices"], numSeqs);
  if (batch.penaltyIndptr)
    needCsr("penaltyIndptr", batch.penaltyIndptr, [batch.penaltyIds!], ["penaltyIds"], numSeqs);
  if (batch.logitBiasIndptr)
    needCsr("logitBiasIndptr", batch.logitBiasIndptr, [batch.logitBiasIds!, batch.logitBiasValues!],
      ["logitBiasIds", "logitBiasValues"], numSeqs);

  const bytes = new Uint8Array(BATCH_BYTES);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, numTokens, true);
  view.setInt32(4, numSeqs, true);
  BATCH_POINTERS.forEach((key, i) => {
    view.setBigUint64(8 + 8 * i, BigInt(addr(batch[key] as Typed | undefined)), true);
  });
  view.setInt32(168, batch.numLogprobs ?? 0, true);
  view.setBigUint64(176, BigInt(addr(batch.penaltyPromptLens)), true);
  view.setBigUint64(184, BigInt(addr(batch.nextTokenIds)), true);
  return bytes;
}

/** fg_step_output: eight pointers. Pass 0 for the outputs not wanted. */
export function packOutputs(ptrs: number[]): Uint8Array {
  const bytes = new Uint8Array(64);
  const view = new DataView(bytes.buffer);
  ptrs.forEach((p, i) => view.setBigUint64(8 * i, BigInt(p), true));
  return bytes;
}

/** fg_kv_config: i32 block_size, i32 num_blocks, f32 memory_fraction, pad, u64 max_kv_bytes. */
export function packKvConfig(kv: KvConfig = {}): Uint8Array {
  const bytes = new Uint8Array(24);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, kv.blockSize ?? 0, true);
  view.setInt32(4, kv.numBlocks ?? 0, true);
  view.setFloat32(8, kv.memoryFraction ?? 0, true);
  view.setBigUint64(16, BigInt(Math.floor(kv.maxKvBytes ?? 0)), true);
  return bytes;
}

/** fg_engine_info: six i32, then u64 weight_bytes and kv_bytes. */
export const INFO_BYTES = 40;
export function readInfo(bytes: Uint8Array): EngineInfo {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const backends: Backend[] = ["cpu", "cuda"];
  return {
    numBlocks: view.getInt32(0, true),
    blockSize: view.getInt32(4, true),
    vocabSize: view.getInt32(8, true),
    maxPositionEmbeddings: view.getInt32(12, true),
    backend: backends[view.getInt32(16, true)] ?? "cpu",
    numThreads: view.getInt32(20, true),
    weightBytes: Number(view.getBigUint64(24, true)),
    kvBytes: Number(view.getBigUint64(32, true)),
  };
}
