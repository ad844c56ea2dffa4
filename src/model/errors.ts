/** The errors of turning a model directory into a spec and canonical tensors. */

/** A config.json this build cannot turn into a spec: unsupported model or feature, bad field. */
export class ModelConfigError extends Error {
  override name = "ModelConfigError";
}

/** A model directory whose tensors do not fit its spec, or a tensor the engine refused. */
export class ModelLoadError extends Error {
  override name = "ModelLoadError";
}
