/** The errors of turning a model directory into a spec and canonical tensors. */

/** A config.json this build cannot turn into a spec: unsupported model or feature, bad field. */
export class ModelConfigError extends Error {
  override name = "ModelConfigError";
}

/** A model directory whose tensors do not fit its spec, or a tensor the engine refused. */
export class ModelLoadError extends Error {
  override name = "ModelLoadError";
}

/**
 * A --model that is neither a directory nor a hub model found in the cache or downloaded.
 * `searched` says each place looked in and why it did not hold the model, one line each.
 */
export class ModelNotFoundError extends Error {
  override name = "ModelNotFoundError";

  constructor(readonly model: string, readonly searched: string[], options?: ErrorOptions) {
    super(`model "${model}" not found; searched: ${searched.join("; ")}`, options);
  }
}
