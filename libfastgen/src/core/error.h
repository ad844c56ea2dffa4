// Internal error type: C++ code throws fg::Error; the C API (api.cpp) turns it into an fg_status
// plus the fg_last_error() message. Exceptions never cross the C ABI.
#pragma once
#include <stdexcept>
#include <string>

#include "fastgen.h"

namespace fg {

struct Error : std::runtime_error {
  fg_status status;
  Error(fg_status s, const std::string &msg) : std::runtime_error(msg), status(s) {}
};

// Throws fg::Error(status, printf-style message).
[[noreturn]] void raise(fg_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

}  // namespace fg
