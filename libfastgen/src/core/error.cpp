#include "core/error.h"

#include <cstdarg>
#include <cstdio>

namespace fg {

void raise(fg_status status, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw Error(status, buf);
}

}  // namespace fg
