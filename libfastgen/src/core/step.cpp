// fg_engine::step: validate, forward over the ragged batch, then sample or score each sample row.
#include <algorithm>
#include <vector>

#include "core/batch.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/sample_rows.h"

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
  for (int32_t s = 0; s < S; s++)
    for (int32_t t = b->cu_seqlens[s]; t < b->cu_seqlens[s + 1]; t++) token_seq[t] = s;

  // Logits only for the tokens of the sample rows, in row order: logits [num_rows, vocab].
  const int64_t V = spec_.vocab_size, R = b->num_rows;
  std::vector<float> logits(R * V);
  fg::cpu::ForwardBatch fb;
  fb.paged = {T, b->positions, token_seq.data(), b->block_indptr, b->block_indices, kv_->block_size()};
  fb.token_ids = b->token_ids;
  fb.logit_tokens = b->row_tokens;
  fb.num_logit_rows = R;
  fg::cpu::forward(spec_, view_, rope_, kv_layers_, fb, logits.data());
  fg::sample_rows(b, logits.data(), V, out);
}
