// fg_batch row s -> the CPU sampler's parameters and output slots (shared by fg_step and the
// fg_sample_logits test hook).
#pragma once
#include <algorithm>
#include "cpu/sampling.h"
#include "fastgen.h"

namespace fg {

inline cpu::SamplingParams sampling_params(const fg_batch *b, int32_t s) {
  cpu::SamplingParams p{};
  p.temperature = b->temperature[s];
  p.top_p = b->top_p[s];
  p.top_k = b->top_k[s];
  p.min_p = b->min_p[s];
  p.seed = b->seed[s];
  p.position = (int64_t)b->context_lens[s] + (b->cu_seqlens[s + 1] - b->cu_seqlens[s]);
  p.presence_penalty = b->presence_penalty ? b->presence_penalty[s] : 0.0f;
  p.frequency_penalty = b->frequency_penalty ? b->frequency_penalty[s] : 0.0f;
  p.repetition_penalty = b->repetition_penalty ? b->repetition_penalty[s] : 1.0f;
  if (b->penalty_indptr) {
    p.penalty_ids = b->penalty_ids + b->penalty_indptr[s];
    p.num_penalty_ids = b->penalty_indptr[s + 1] - b->penalty_indptr[s];
    if (b->penalty_prompt_lens)
      p.num_prompt_penalty_ids = std::min<int64_t>(std::max(0, b->penalty_prompt_lens[s]), p.num_penalty_ids);
  }
  if (b->logit_bias_indptr) {
    p.bias_ids = b->logit_bias_ids + b->logit_bias_indptr[s];
    p.bias_values = b->logit_bias_values + b->logit_bias_indptr[s];
    p.num_bias = b->logit_bias_indptr[s + 1] - b->logit_bias_indptr[s];
  }
  return p;
}

inline cpu::SampleOut sample_out(const fg_step_output *out, int32_t s, int32_t num_logprobs) {
  cpu::SampleOut o{};
  o.id = &out->sampled_ids[s];
  o.logprob = out->sampled_logprobs ? &out->sampled_logprobs[s] : nullptr;
  o.top_ids = out->top_ids && num_logprobs > 0 ? &out->top_ids[(int64_t)s * num_logprobs] : nullptr;
  o.top_logprobs =
      out->top_logprobs && num_logprobs > 0 ? &out->top_logprobs[(int64_t)s * num_logprobs] : nullptr;
  o.num_logprobs = num_logprobs;
  return o;
}

}  // namespace fg
