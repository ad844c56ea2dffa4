/** bun:ffi binding of libfastgen: the only TypeScript that touches native pointers. */
export { FastgenError, Status, type FastgenErrorCode } from "./errors";
export { libraryPath } from "./lib";
export { NativeEngine } from "./engine";
export {
  abiVersion,
  cpuGemm,
  cpuMoeRoute,
  cpuRmsnorm,
  cudaDeviceCount,
  cudaFp8Linear,
  cudaGemm,
  cudaRmsnorm,
  dequantizeFp8,
  libraryKnobs,
  libraryVersion,
  quantizeFp8,
  setNumThreads,
} from "./kernels";
export type { CudaGemmOptions, Fp8Path, LibraryKnob, MoeRouting } from "./kernels";
export { specTensors } from "./tensorTable";
export { mlaAttention, pagedAttention, sampleLogits, type AttentionKernel, type AttentionShape, type MlaAttentionShape } from "./stages";
export {
  ACTIVATION_KINDS,
  activationOp,
  biasRowsOp,
  embedOp,
  expertGateOp,
  moeRouteOp,
  normOp,
  posEmbedOp,
  postNormOp,
  ropeOp,
  sandwichNormOp,
  softcapOp,
} from "./ops";
export type { ActivationKind, NormOpArgs, NormOpKind, RopeOpArgs } from "./ops";
export type { Backend, DType, EngineInfo, KvConfig, LateMasks, StepBatch, StepResult, WeightScales } from "./types";
