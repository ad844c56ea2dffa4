/** The canonical tensors a model spec needs, from libfastgen's one tensor table (core/tensor_kinds.h). */
import { CString, type Pointer } from "bun:ffi";
import type { ModelSpec } from "./modelSpec";
import { check, cString, lib } from "./lib";

/**
 * fg_spec_tensors: canonical name -> shape for every tensor `spec` needs, in the table's order.
 * @throws FastgenError (INVALID_ARGUMENT) when libfastgen rejects the spec.
 */
export function specTensors(spec: ModelSpec): Map<string, number[]> {
  const out = new BigUint64Array(1);
  check(lib().fg_spec_tensors(cString(JSON.stringify(spec)), out));
  const rows = JSON.parse(new CString(Number(out[0]) as Pointer).toString()) as [string, number[]][];
  return new Map(rows);
}
