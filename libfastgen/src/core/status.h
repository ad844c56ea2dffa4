// Error plumbing shared by every translation unit: set a thread-local message, return a status.
#pragma once
#include "fastgen.h"

namespace fg {
// Records a printf-style message for fg_last_error() and returns `status`.
fg_status fail(fg_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void clear_error();
}  // namespace fg
