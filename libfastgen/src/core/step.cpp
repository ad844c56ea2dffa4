// fg_engine's steps: validate, forward over the ragged batch, then sample or score each sample
// row. fg_step runs both halves in one call; fg_step_launch / fg_step_finish split them so the
// caller computes masks while the forward runs (on the pass thread, or queued on the device).
#include <algorithm>
#include <exception>
#include <vector>

#include "core/batch.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/knobs.h"
#include "core/sample_rows.h"

namespace {

// Logits kept between passes up to this many floats (64 MiB); a bigger pass (prompt logprobs
// over a long chunk) frees its buffer at finish.
constexpr size_t kKeepLogits = size_t(1) << 24;

}  // namespace

void fg_engine::step(const fg_batch *b, fg_step_output *out) {
  std::lock_guard<std::mutex> lk(mu_);
  launch_locked(b, /*overlap=*/false, "fg_step");  // validates; starts nothing
  try {
    fg::validate_output(b, out);
  } catch (...) {
    pass_.in_flight = false;
    throw;
  }
  finish_locked(nullptr, out);
}

void fg_engine::step_launch(const fg_batch *b) {
  std::lock_guard<std::mutex> lk(mu_);
  launch_locked(b, fg_knob_int(FG_KNOB_STEP_OVERLAP) != 0, "fg_step_launch");
}

void fg_engine::step_finish(const fg_step_late *late, fg_step_output *out) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!pass_.in_flight)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "fg_step_finish: no pass in flight (call fg_step_launch first)");
  finish_locked(late, out);
}

bool fg_engine::drop_pass() {
  std::lock_guard<std::mutex> lk(mu_);
  if (!pass_.in_flight) return false;
  try {
    if (backend_ == FG_BACKEND_CUDA && pass_.started) cuda_finish(nullptr, nullptr);
    pass_thread_.wait();
  } catch (...) {
    // the pass is dropped: its failure has no one to report to
  }
  pass_.in_flight = pass_.started = false;
  return true;
}

void fg_engine::launch_locked(const fg_batch *b, bool overlap, const char *fn) {
  if (!finalized()) fg::raise(FG_ERR_INVALID_ARGUMENT, "%s: engine is not finalized", fn);
  if (pass_.in_flight)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "%s: a pass is in flight (fg_step_launch without fg_step_finish)", fn);
  if (fail_steps_ > 0) {
    fail_steps_--;
    fg::raise(fail_status_, "%s: injected failure (fg_debug_fail_next_steps)", fn);
  }
  if (backend_ == FG_BACKEND_CUDA) fg::validate_batch(spec_, cuda_info_.num_blocks, cuda_info_.block_size, b);
  else fg::validate_batch(spec_, kv_->num_blocks(), kv_->block_size(), b);
  penalties_.validate(b);
  // Valid: from here the pass happens (a failure below still leaves the slots appended; the
  // caller drops the pass's sequences, and a slot's next user cuts it with penalty_slot_keep).
  penalties_.apply(b);
  pass_.batch = *b;
  pass_.started = false;
  pass_.in_flight = true;
  const int32_t T = b->num_tokens, S = b->num_seqs;
  if (T == 0) return;
  if (backend_ == FG_BACKEND_CUDA) {
    if (b->penalty_slots) {  // the device sampler reads whole lists: one CSR, uploaded with the pass
      Pass &p = pass_;
      penalties_.flatten(b, p.penalty_indptr, p.penalty_ids, p.penalty_prompt_lens);
      p.batch.penalty_indptr = p.penalty_indptr.data();
      p.batch.penalty_ids = p.penalty_ids.data();
      p.batch.penalty_prompt_lens = p.penalty_prompt_lens.data();
      p.batch.penalty_slots = p.batch.penalty_slot_keep = nullptr;
    }
    try {
      cuda_launch(overlap);
    } catch (...) {
      pass_.in_flight = false;
      throw;
    }
    return;
  }
  pass_.token_seq.resize(T);
  for (int32_t s = 0; s < S; s++)
    for (int32_t t = b->cu_seqlens[s]; t < b->cu_seqlens[s + 1]; t++) pass_.token_seq[t] = s;
  pass_.logits.resize((size_t)b->num_rows * spec_.vocab_size);
  if (!overlap) return;
  pass_thread_.start([this] { cpu_forward(); });
  pass_.started = true;
}

void fg_engine::finish_locked(const fg_step_late *late, fg_step_output *out) {
  struct End {  // the pass ends here, whatever is thrown below
    Pass &p;
    ~End() {
      p.in_flight = p.started = false;
      if (p.logits.capacity() > kKeepLogits) std::vector<float>().swap(p.logits);
    }
  } end{pass_};
  const fg_batch &launched = pass_.batch;
  if (backend_ == FG_BACKEND_CUDA) {
    try {
      fg::validate_late(&launched, late);
      fg::validate_output(&launched, out);
    } catch (...) {
      if (pass_.started) {
        try {
          cuda_finish(nullptr, nullptr);  // wait for the forward before reporting
        } catch (...) {
        }
      }
      throw;
    }
    if (launched.num_tokens > 0) cuda_finish(late, out);
    return;
  }
  if (pass_.started) pass_thread_.wait();  // rethrows the forward's failure
  fg::validate_late(&launched, late);
  fg::validate_output(&launched, out);
  if (launched.num_tokens == 0) return;
  if (!pass_.started) cpu_forward();
  const fg_batch b = fg::with_late(launched, late);
  fg::sample_rows(&b, pass_.logits.data(), spec_.vocab_size, out, penalties_);
}

void fg_engine::cpu_forward() {
  const fg_batch &b = pass_.batch;
  fg::cpu::ForwardBatch fb;
  fb.paged = {b.num_tokens, b.positions, pass_.token_seq.data(), b.block_indptr, b.block_indices,
              kv_->block_size()};
  fb.token_ids = b.token_ids;
  fb.logit_tokens = b.row_tokens;
  fb.num_logit_rows = b.num_rows;
  fg::cpu::forward(spec_, view_, rope_, kv_layers_, fb, pass_.logits.data());
}
