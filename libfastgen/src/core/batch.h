// Validation of fg_step inputs. Runs before anything is computed or written, so a rejected
// batch leaves the KV cache and the outputs untouched.
#pragma once
#include <cstdint>

#include "core/spec.h"
#include "fastgen.h"

namespace fg {

// Throws fg::Error(FG_ERR_INVALID_ARGUMENT) with a message naming the first problem found.
void validate_batch(const ModelSpec &spec, int32_t num_blocks, int32_t block_size,
                    const fg_batch *b, const fg_step_output *out);

}  // namespace fg
