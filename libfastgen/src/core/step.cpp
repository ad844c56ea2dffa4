// fg_engine::step: validate, forward over the ragged batch, sample per sequence.
#include <algorithm>
#include <vector>

#include "core/batch.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/sample_params.h"
#include "cpu/sampling.h"
#include "cpu/thread_pool.h"

void fg_engine::step(const fg_batch *b, fg_step_output *out) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!finalized()) fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_step: engine is not finalized");
  if (fail_steps_ > 0) {
    fail_steps_--;
    fg::raise(fail_status_, "fg_step: injected failure (fg_debug_fail_next_steps)");
  }
  if (backend_ == FG_BACKEND_CUDA) return cuda_step(b, out);
  fg::validate_batch(spec_, kv_->num_blocks(), kv_->block_size(), b, out);
  const int32_t T = b->num_tokens, S = b->num_seqs;
  if (T == 0) return;

  std::vector<int32_t> token_seq(T);  // [T] sequence of each token
  std::vector<int32_t> want_seqs, logit_tokens;
  for (int32_t s = 0; s < S; s++) {
    for (int32_t t = b->cu_seqlens[s]; t < b->cu_seqlens[s + 1]; t++) token_seq[t] = s;
    if (b->wants_token[s]) {
      want_seqs.push_back(s);
      logit_tokens.push_back(b->cu_seqlens[s + 1] - 1);  // its last token in this pass
    }
  }

  // Prompt logprobs: logits rows for tokens whose next id is wanted, after the sampling rows.
  std::vector<int32_t> next_rows;  // token index of each extra row
  if (b->next_token_ids)
    for (int32_t t = 0; t < T; t++)
      if (b->next_token_ids[t] >= 0) {
        next_rows.push_back(t);
        logit_tokens.push_back(t);
      }
  const int64_t V = spec_.vocab_size, R = (int64_t)want_seqs.size();
  const int64_t RN = R + (int64_t)next_rows.size();
  std::vector<float> logits(RN * V);  // [R + next rows, vocab]
  fg::cpu::ForwardBatch fb;
  fb.paged = {T, b->positions, token_seq.data(), b->block_indptr, b->block_indices, kv_->block_size()};
  fb.token_ids = b->token_ids;
  fb.logit_tokens = logit_tokens.data();
  fb.num_logit_rows = RN;
  fg::cpu::forward(spec_, view_, inv_freq_, kv_layers_, fb, logits.data());

  const int32_t L = b->num_logprobs;
  fg::cpu::parallel_for(R, [&](int64_t r) {
    const int32_t s = want_seqs[r];
    const float *row = &logits[r * V];
    const fg::cpu::SamplingParams p = fg::sampling_params(b, s);
    const fg::cpu::SampleOut o = fg::sample_out(out, s, L);
    fg::cpu::sample_token(row, V, p, o);
    if (out->logits) std::copy(row, row + V, out->logits + (int64_t)s * V);
  });
  fg::cpu::parallel_for((int64_t)next_rows.size(), [&](int64_t j) {
    const int32_t t = next_rows[j];
    fg::cpu::SampleOut o{};
    o.logprob = &out->next_token_logprobs[t];
    o.top_ids = out->next_top_ids && L > 0 ? &out->next_top_ids[(int64_t)t * L] : nullptr;
    o.top_logprobs = out->next_top_logprobs && L > 0 ? &out->next_top_logprobs[(int64_t)t * L] : nullptr;
    o.num_logprobs = L;
    fg::cpu::raw_logprobs(&logits[(R + j) * V], V, b->next_token_ids[t], o);
  });
}
