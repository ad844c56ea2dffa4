// fg_engine's steps: validate, forward over the ragged batch, then sample or score each sample
// row. fg_step runs both halves in one call; fg_step_launch / fg_step_finish split them so the
// caller computes masks while the forward runs (the backend's: on the CPU pass thread, or queued
// on the device).
#include "core/batch.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/knobs.h"

void fg_engine::step(const fg_batch *b, fg_step_output *out) {
  std::lock_guard<std::mutex> lk(mu_);
  launch_locked(b, /*overlap=*/false, "fg_step");  // validates; starts nothing
  try {
    fg::validate_output(b, out);
  } catch (...) {
    if (b->num_tokens > 0) backend_->drop();
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
  if (pass_.batch.num_tokens > 0) backend_->drop();  // its failure has no one to report to
  pass_.in_flight = false;
  return true;
}

void fg_engine::launch_locked(const fg_batch *b, bool overlap, const char *fn) {
  if (!finalized_) fg::raise(FG_ERR_INVALID_ARGUMENT, "%s: engine is not finalized", fn);
  if (pass_.in_flight)
    fg::raise(FG_ERR_INVALID_ARGUMENT, "%s: a pass is in flight (fg_step_launch without fg_step_finish)", fn);
  if (fail_steps_ > 0) {
    fail_steps_--;
    fg::raise(fail_status_, "%s: injected failure (fg_debug_fail_next_steps)", fn);
  }
  const fg::Backend::KvShape kv = backend_->kv_shape();
  fg::validate_batch(spec_, kv.num_blocks, kv.block_size, b);
  penalties_.validate(b);
  // Valid: from here the pass happens (a failure below still leaves the slots appended; the
  // caller drops the pass's sequences, and a slot's next user cuts it with penalty_slot_keep).
  penalties_.apply(b);
  pass_.batch = *b;
  pass_.in_flight = true;
  if (b->num_tokens == 0) return;
  try {
    backend_->launch(*b, overlap);
  } catch (...) {
    pass_.in_flight = false;
    throw;
  }
}

void fg_engine::finish_locked(const fg_step_late *late, fg_step_output *out) {
  struct End {  // the pass ends here, whatever is thrown below
    Pass &p;
    ~End() { p.in_flight = false; }
  } end{pass_};
  const fg_batch &launched = pass_.batch;
  const bool runs = launched.num_tokens > 0;
  try {
    fg::validate_late(&launched, late);
    fg::validate_output(&launched, out);
  } catch (...) {
    if (runs) backend_->drop();  // the forward is waited for before the caller hears of it
    throw;
  }
  if (runs) backend_->finish(late, out);
}
