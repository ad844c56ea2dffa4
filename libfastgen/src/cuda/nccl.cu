// Opens NCCL at run time (see nccl.cuh).
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cuda/common.cuh"
#include "cuda/nccl.cuh"

namespace fgcu {

namespace {
Nccl g_nccl;
int g_rc = -1;  // -1: not tried yet
char g_err[512];
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

int open_locked() {
  const char *names[] = {"libnccl.so.2", "libnccl.so"};
  for (const char *n : names) {
    g_nccl.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
    if (g_nccl.lib) break;
  }
  if (!g_nccl.lib) {
    snprintf(g_err, sizeof g_err, "NCCL not found (dlopen libnccl.so.2: %s); tensor parallelism needs it", dlerror());
    return FG_ERR_UNSUPPORTED;
  }
#define FGCU_NCCL_SYM(field, name)                                       \
  g_nccl.field = (decltype(g_nccl.field))dlsym(g_nccl.lib, name);        \
  if (!g_nccl.field) {                                                   \
    snprintf(g_err, sizeof g_err, "NCCL: symbol %s missing", name);      \
    return FG_ERR_UNSUPPORTED;                                           \
  }
  FGCU_NCCL_SYM(comm_init_all, "ncclCommInitAll");
  FGCU_NCCL_SYM(comm_destroy, "ncclCommDestroy");
  FGCU_NCCL_SYM(comm_abort, "ncclCommAbort");
  FGCU_NCCL_SYM(all_reduce, "ncclAllReduce");
  FGCU_NCCL_SYM(all_gather, "ncclAllGather");
  FGCU_NCCL_SYM(error_string, "ncclGetErrorString");
  FGCU_NCCL_SYM(get_version, "ncclGetVersion");
#undef FGCU_NCCL_SYM
  return 0;
}
}  // namespace

int nccl_open(Nccl **out, char *err) {
  pthread_mutex_lock(&g_mu);
  if (g_rc < 0) g_rc = open_locked();
  const int rc = g_rc;
  pthread_mutex_unlock(&g_mu);
  if (rc) {
    snprintf(err, 512, "%s", g_err);
    return rc;
  }
  *out = &g_nccl;
  return 0;
}

}  // namespace fgcu
