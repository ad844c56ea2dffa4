// The C ABI's exception boundary: runs f(), turning any exception into an fg_status plus the
// fg_last_error() message (used by api.cpp and test_hooks.cpp).
#pragma once
#include <exception>
#include <new>

#include "core/error.h"
#include "core/status.h"

namespace fg {

template <class F>
fg_status guard(const char *fn, F &&f) {
  clear_error();
  try {
    f();
    return FG_OK;
  } catch (const Error &e) {
    return fail(e.status, "%s", e.what());
  } catch (const std::bad_alloc &) {
    return fail(FG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  } catch (const std::exception &e) {
    return fail(FG_ERR_INTERNAL, "%s: %s", fn, e.what());
  } catch (...) {
    return fail(FG_ERR_INTERNAL, "%s: unknown exception", fn);
  }
}

}  // namespace fg
