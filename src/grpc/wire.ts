/**
 * The gRPC messages as plain objects (proto/fastgen.proto, decoded as proto.ts describes). Field
 * names are the .proto's; a `?` marks a field that may be absent (`optional` scalars, messages,
 * oneof members). Outgoing messages may leave any field out: it is sent as its zero value.
 */

export type WireFinishReason = "FINISH_REASON_UNSPECIFIED" | "FINISH_REASON_STOP" | "FINISH_REASON_LENGTH" | "FINISH_REASON_ABORT";

export interface WireSamplingParams {
  max_new_tokens: number;
  min_new_tokens: number;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  seed?: number | null;
  stop: string[];
  stop_token_ids: number[];
  ignore_eos: boolean;
  presence_penalty: number;
  frequency_penalty: number;
  repetition_penalty?: number | null;
  logprobs: number;
  n: number;
  prompt_logprobs?: number | null;
  cache_salt?: string | null;
  include_stop_str_in_output: boolean;
  skip_special_tokens?: boolean | null;
  bad_words: { ids: number[] }[];
  allowed_token_ids: number[];
  /** Token id (as a string key) -> bias. */
  logit_bias: Record<string, number>;
  structured_output?: WireStructuredOutput | null;
  tools?: WireFunctionTool[];
  tool_choice?: string;
  parallel_tool_calls?: boolean | null;
}

/** One output constraint (a oneof: `kind` names the field set). */
export interface WireStructuredOutput {
  json_schema?: string | null;
  json_object?: boolean | null;
  regex?: string | null;
  choice?: { choices: string[] } | null;
  grammar?: string | null;
  structural_tag?: string | null;
  kind?: "json_schema" | "json_object" | "regex" | "choice" | "grammar" | "structural_tag";
}

export interface WireFunctionTool {
  name: string;
  description: string;
  parameters: string;
}

export interface WirePrompt {
  text?: string | null;
  token_ids?: { ids: number[] } | null;
  kind?: "text" | "token_ids";
}

export interface WireGenerateRequest {
  model: string;
  prompts: WirePrompt[];
  params?: WireSamplingParams | null;
  request_id: string;
}

export interface WireGenerateStreamRequest {
  model: string;
  prompt?: WirePrompt | null;
  params?: WireSamplingParams | null;
  request_id: string;
  /** A front end's GenerateRequest.firstSample (fair share across a request's prompts). */
  first_sample?: number;
}

export interface WireTokenLogprob {
  id: number;
  logprob: number;
  top_ids: number[];
  top_logprobs: number[];
}

/** Where a stopped sample's stop came from (a oneof on Response and GenerateDelta). */
export interface WireStopReason {
  stop_string?: string | null;
  stop_token_id?: number | null;
  stop_reason?: "stop_string" | "stop_token_id";
}

export interface WireResponse extends WireStopReason {
  generated_text: string;
  prompt_length: number;
  generated_length: number;
  finish_reason: WireFinishReason;
  token_ids: number[];
  logprobs: WireTokenLogprob[];
  cached_tokens: number;
}

export interface WireGenerateReply {
  responses: WireResponse[];
}

export interface WireGenerateDelta extends WireStopReason {
  text: string;
  token_ids: number[];
  logprobs: WireTokenLogprob[];
  prompt_logprobs?: WireTokenLogprob[];
  finish_reason: WireFinishReason;
  prompt_length: number;
  generated_length: number;
  index: number;
  cached_tokens: number;
}

export interface WireModelInfo {
  id: string;
  max_model_len: number;
}

export interface WireHistogram {
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}

export interface WireEngineMetrics {
  queue_time_seconds?: WireHistogram | null;
  iteration_tokens?: WireHistogram | null;
  kv_blocks_total: number;
  kv_blocks_free: number;
  prompt_tokens_total: number;
  generation_tokens_total: number;
  requests_finished_total: number;
  preemptions_total: number;
  steps_total: number;
  prefix_cache_queries_total: number;
  prefix_cache_hits_total: number;
  spec_decode?: WireSpecDecodeMetrics | null;
  grammar?: WireGrammarMetrics | null;
}

export interface WireGrammarMetrics {
  compiles: number;
  compile_seconds: number;
  cache_hits: number;
  compile_timeouts: number;
  masks_computed: number;
  mask_wait_seconds: number;
  worker_restarts: number;
}

export interface WireSpecDecodeMetrics {
  num_drafts: number;
  num_draft_tokens: number;
  num_accepted_tokens: number;
  accepted_per_pos: number[];
  governor_probes?: number;
  governor_flips?: number;
  off_by_batch?: number[];
}

export interface WireReplicaStatus {
  address: string;
  healthy: boolean;
  outstanding_tokens: number;
  requests_in_flight: number;
  requests_routed: number;
  last_error: string;
}

export interface WireHealthReply {
  serving: boolean;
  requests_waiting: number;
  requests_running: number;
  replicas_healthy: number;
  outstanding_tokens: number;
  model?: WireModelInfo | null;
  metrics?: WireEngineMetrics | null;
  replicas: WireReplicaStatus[];
}

export interface WireListModelsReply {
  models: WireModelInfo[];
}

export interface WireAbortRequest {
  request_id: string;
}

export interface WireAbortReply {
  found: boolean;
}
