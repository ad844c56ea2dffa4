/** The speculator an engine's options ask for: its proposer by method, behind one interface. */
import type { EngineOptions } from "../options";
import type { StopConfig } from "../stop";
import type { SpeculativeConfig } from "./config";
import { DraftModelProposer } from "./draftModel";
import { NgramProposer } from "./ngram";
import type { Proposer } from "./proposer";
import { Speculator } from "./speculator";

/** Builds the proposer for `config` (loading a draft model) and the speculator around it. */
export function createSpeculator(config: SpeculativeConfig, engine: EngineOptions, vocabSize: number, stop: StopConfig): Speculator {
  let proposer: Proposer;
  switch (config.method) {
    case "ngram":
      proposer = new NgramProposer(config.promptLookupMin, config.promptLookupMax);
      break;
    case "draft":
      proposer = DraftModelProposer.load(config.draftModel!, engine, vocabSize, stop.eosTokenIds);
      break;
  }
  return new Speculator(config, proposer, stop);
}
