// Validation of fg_step inputs. Runs before anything is computed or written, so a rejected
// batch leaves the KV cache and the outputs untouched.
#pragma once
#include <cstdint>

#include "core/spec.h"
#include "fastgen.h"

namespace fg {

// Each throws fg::Error(FG_ERR_INVALID_ARGUMENT) with a message naming the first problem found.
void validate_batch(const ModelSpec &spec, int32_t num_blocks, int32_t block_size,
                    const fg_batch *b);
// The outputs of a validated batch (fg_step checks them before the pass, fg_step_finish at finish).
void validate_output(const fg_batch *b, const fg_step_output *out);
// fg_step_finish's late masks for the rows of a validated batch (null: none late).
void validate_late(const fg_batch *b, const fg_step_late *late);
// The batch as sampling sees it: b with late's masks in place of its own (when late has them).
fg_batch with_late(const fg_batch &b, const fg_step_late *late);

}  // namespace fg
