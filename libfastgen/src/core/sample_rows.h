// The sample rows of an fg_batch on the CPU sampler (shared by fg_step and the fg_sample_logits
// test hook): row r of logits [num_rows, vocab] is drawn with its sequence's parameters and its
// mask, or scored against its target.
#pragma once
#include <cstdint>

#include "core/penalty_slots.h"
#include "fastgen.h"

namespace fg {

// Requires a validated batch. Writes every output of `out` that is not null, row by row.
// Penalty lists come from `penalties` (the batch's slots, else its CSR).
void sample_rows(const fg_batch *b, const float *logits, int64_t vocab, fg_step_output *out,
                 const PenaltySlots &penalties);

}  // namespace fg
