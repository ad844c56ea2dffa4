#include "core/status.h"

#include <cstdarg>
#include <cstdio>

namespace {
thread_local char g_last_error[1024] = "";
}

namespace fg {
fg_status fail(fg_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
  va_end(ap);
  return status;
}
void clear_error() { g_last_error[0] = '\0'; }
}  // namespace fg

extern "C" const char *fg_last_error(void) { return g_last_error; }
