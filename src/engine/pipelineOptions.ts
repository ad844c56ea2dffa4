/**
 * The library API's generation options and result, in DeepSpeed-MII's snake_case shape: what
 * pipeline() (src/index.ts) takes and returns, and what the gRPC client (grpc/client.ts) extends.
 */
import type { SamplingOptions } from "./samplingOptions";
import type { FinishReason } from "./types";

/** Generation options in MII's snake_case names. */
export interface PipelineGenerateOptions {
  max_new_tokens?: number;
  min_new_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  seed?: number;
  stop?: string | string[];
  stop_token_ids?: number[];
  ignore_eos?: boolean;
  do_sample?: boolean;
  repetition_penalty?: number;
}

/** One prompt's result, MII's response shape. */
export interface PipelineResponse {
  generated_text: string;
  prompt_length: number;
  generated_length: number;
  finish_reason: FinishReason;
  token_ids: number[];
}

/** Engine sampling options from MII-shaped ones (defaults as MII's). */
export function toSampling(o: PipelineGenerateOptions = {}): SamplingOptions {
  const sample = o.do_sample ?? o.temperature !== undefined;
  return {
    maxTokens: o.max_new_tokens ?? 128,
    minTokens: o.min_new_tokens ?? 0,
    temperature: sample ? (o.temperature ?? 1) : 0,
    topP: o.top_p ?? 1,
    topK: o.top_k ?? -1,
    minP: o.min_p ?? 0,
    seed: o.seed ?? 0,
    stop: o.stop === undefined ? [] : Array.isArray(o.stop) ? o.stop : [o.stop],
    stopTokenIds: o.stop_token_ids ?? [],
    ignoreEos: o.ignore_eos ?? false,
    repetitionPenalty: o.repetition_penalty ?? 1,
  };
}
