#include "core/sample_rows.h"

#include <algorithm>
#include <vector>

#include "core/row_drafts.h"
#include "cpu/sampling.h"
#include "cpu/thread_pool.h"

namespace fg {
namespace {

// first_token: the token of s's first sampled row (its later rows count the drafts between).
cpu::SamplingParams sampling_params(const fg_batch *b, int32_t s, int32_t r, int32_t first_token,
                                    int64_t vocab, const PenaltySlots &penalties) {
  cpu::SamplingParams p{};
  p.temperature = b->temperature[s];
  p.top_p = b->top_p[s];
  p.top_k = b->top_k[s];
  p.min_p = b->min_p[s];
  p.seed = b->seed[s];
  p.position = (int64_t)b->positions[b->row_tokens[r]] + 1;
  p.presence_penalty = b->presence_penalty ? b->presence_penalty[s] : 0.0f;
  p.frequency_penalty = b->frequency_penalty ? b->frequency_penalty[s] : 0.0f;
  p.repetition_penalty = b->repetition_penalty ? b->repetition_penalty[s] : 1.0f;
  const PenaltyList l = penalties.list(b, s);
  p.penalty_ids = l.ids;
  p.num_penalty_ids = l.n;
  p.num_prompt_penalty_ids = l.prompt_n;
  const TokenRange d = row_draft_tokens(b, first_token, r);
  p.draft_ids = b->token_ids + d.begin;
  p.num_draft_ids = d.end - d.begin;
  if (b->logit_bias_indptr) {
    p.bias_ids = b->logit_bias_ids + b->logit_bias_indptr[s];
    p.bias_values = b->logit_bias_values + b->logit_bias_indptr[s];
    p.num_bias = b->logit_bias_indptr[s + 1] - b->logit_bias_indptr[s];
  }
  const int32_t m = b->row_masks ? b->row_masks[r] : -1;
  if (m >= 0) p.mask = b->masks + (int64_t)m * ((vocab + 31) / 32);
  return p;
}

cpu::SampleOut sample_out(const fg_step_output *out, int32_t r, int32_t num_logprobs) {
  cpu::SampleOut o{};
  o.id = &out->ids[r];
  o.logprob = out->logprobs ? &out->logprobs[r] : nullptr;
  o.top_ids = out->top_ids && num_logprobs > 0 ? &out->top_ids[(int64_t)r * num_logprobs] : nullptr;
  o.top_logprobs =
      out->top_logprobs && num_logprobs > 0 ? &out->top_logprobs[(int64_t)r * num_logprobs] : nullptr;
  o.num_logprobs = num_logprobs;
  return o;
}

}  // namespace

void sample_rows(const fg_batch *b, const float *logits, int64_t V, fg_step_output *out,
                 const PenaltySlots &penalties) {
  const int32_t R = b->num_rows;
  if (R == 0) return;
  std::vector<int32_t> row_seq(R);  // [R] sequence of each row
  std::vector<int32_t> first(b->num_seqs);  // [S] token of each sequence's first sampled row
  for (int32_t s = 0; s < b->num_seqs; s++) {
    first[s] = first_sampled_token(b, s);
    for (int32_t r = b->row_indptr[s]; r < b->row_indptr[s + 1]; r++) row_seq[r] = s;
  }
  cpu::parallel_for(R, [&](int64_t r) {
    const float *row = logits + r * V;
    const cpu::SampleOut o = sample_out(out, (int32_t)r, b->num_logprobs);
    const int32_t target = b->row_targets ? b->row_targets[r] : -1;
    if (target >= 0) {
      *o.id = target;
      cpu::raw_logprobs(row, V, target, o);
    } else {
      const int32_t s = row_seq[r];
      cpu::sample_token(row, V, sampling_params(b, s, (int32_t)r, first[s], V, penalties), o);
    }
    if (out->logits) std::copy(row, row + V, out->logits + r * V);
  });
}

}  // namespace fg
