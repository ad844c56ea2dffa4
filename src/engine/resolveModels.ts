/**
 * The models an engine is asked to load, as directories: the model (default: the embedded demo
 * model) and the draft model of speculative decoding, each a path or a hub id (model/hub.ts).
 * Entry points resolve here, before any engine starts, so engine hosts, child processes and
 * replicas are handed directories and never download.
 */
import { defaultModelDir } from "../model/defaultModel";
import { type HubOptions, type ResolvedModel, resolveModel } from "../model/hub";
import type { EngineOptions } from "./options";

export type { HubOptions, ResolvedModel };

/** `model` and `options.speculative.draftModel` resolved; the options otherwise as given. */
export async function resolveModels<O extends Partial<EngineOptions>>(
  model: string | undefined,
  options: O,
  hub: HubOptions = {},
): Promise<{ model: ResolvedModel; options: O }> {
  const resolved = await resolveModel(model ?? defaultModelDir(), hub);
  const draft = options.speculative?.draftModel;
  if (draft === undefined) return { model: resolved, options };
  const { dir } = await resolveModel(draft, hub);
  return { model: resolved, options: { ...options, speculative: { ...options.speculative!, draftModel: dir } } };
}
