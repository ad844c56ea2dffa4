// The CUDA engine as the core sees it (fgcu_engine_*): tensor_parallel ranks, one per device.
//
//   tp == 1   the caller's thread runs rank 0 directly: no threads, no NCCL.
//   tp  > 1   one worker thread per rank (CUDA's current device is per thread), NCCL communicators
//             from ncclCommInitAll (one process, all devices). fg_step hands the batch to every
//             worker and waits:
//
//     caller ──▶ rank r: prepare (metadata, workspaces) ──▶ barrier ──▶ forward with collectives
//                                                                      ──▶ sample (rank 0) ──▶ wait
//
//   A failure in prepare (a bad batch, no memory for workspaces) fails the step on every rank
//   before any collective starts; the engine stays usable. A failure after the barrier (an NCCL
//   error, a collective that does not finish within the timeout because a rank failed or
//   stalled) aborts the communicators: in-flight collectives end, the step returns
//   FG_ERR_DEVICE, and the engine is broken: later steps fail at once with the first error, so
//   the server reports it instead of hanging. Weights load on the caller's thread, rank by rank.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda/engine.cuh"

using namespace fgcu;

namespace {

constexpr int kMaxRanks = 8;
constexpr int kDefaultTimeoutMs = 120000;

}  // namespace

struct fgcu_engine {
  int tp = 1;
  int timeout_ms = kDefaultTimeoutMs;
  fgcu_rank *ranks[kMaxRanks] = {};
  Nccl *nccl = nullptr;
  ncclComm_t comms[kMaxRanks] = {};

  // workers (tp > 1), guarded by mu
  pthread_t threads[kMaxRanks];
  int started = 0;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake = PTHREAD_COND_INITIALIZER, done_cv = PTHREAD_COND_INITIALIZER;
  uint64_t job = 0;  // bumped per step
  int done = 0, arrived = 0;
  bool quit = false, prep_failed = false;
  const fg_batch *batch = nullptr;
  fg_step_output *out = nullptr;
  int rc[kMaxRanks] = {};
  bool ran[kMaxRanks] = {};  // the rank got past the barrier (collectives may be in flight)
  char err[kMaxRanks][512];
  Meta meta[kMaxRanks];
  volatile int abort_flag = 0;
  WaitCtl wait;
  int bar_count = 0;       // rendezvous(): ranks arrived, and the generation they wait to change
  unsigned bar_gen = 0;

  bool broken = false;
  char broken_msg[512] = "";

  Meta launched;  // tp == 1: the pass fgcu_engine_launch queued, for fgcu_engine_finish

  // FASTGEN_STEP_TIMING (tp == 1): events at the launch, after the forward, and before sampling
  struct StepTiming {
    FILE *f = nullptr;
    cudaEvent_t ev[3] = {};
    int64_t launch_ns = 0;
    bool armed = false;
  } timing;
};

namespace {

// Opens FASTGEN_STEP_TIMING's file and the events once per engine (false: off).
bool timing_on(fgcu_engine *g) {
  static const char *path = fg_knob_str(FG_KNOB_STEP_TIMING);
  if (!path[0]) return false;
  auto &t = g->timing;
  if (!t.f) {
    t.f = fopen(path, "a");
    if (!t.f) return false;
    for (cudaEvent_t &e : t.ev) cudaEventCreate(&e);
  }
  return true;
}

int set_device(int d, char *err) {
  FGCU_TRY(cudaSetDevice(d));
  return 0;
}

struct WorkerArg {
  fgcu_engine *g;
  int rank;
};

void *worker(void *p) {
  WorkerArg a = *(WorkerArg *)p;
  free(p);
  fgcu_engine *g = a.g;
  const int r = a.rank;
  fgcu_rank *e = g->ranks[r];
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&g->mu);
    while (!g->quit && g->job == seen) pthread_cond_wait(&g->wake, &g->mu);
    if (g->quit) {
      pthread_mutex_unlock(&g->mu);
      return nullptr;
    }
    seen = g->job;
    pthread_mutex_unlock(&g->mu);

    char *err = g->err[r];
    err[0] = 0;
    int rc = set_device(e->device, err);
    if (!rc) rc = rank_prepare(e, g->batch, &g->meta[r], err);

    // barrier: nobody enters a collective unless every rank prepared
    pthread_mutex_lock(&g->mu);
    if (rc) g->prep_failed = true;
    if (++g->arrived == g->tp) pthread_cond_broadcast(&g->done_cv);
    while (g->arrived < g->tp) pthread_cond_wait(&g->done_cv, &g->mu);
    const bool go = !g->prep_failed;
    pthread_mutex_unlock(&g->mu);

    if (go) {
      g->ran[r] = true;
      e->wait = &g->wait;
      rc = rank_run(e, g->meta[r], r == 0 ? g->out : nullptr, err);
      if (rc) g->abort_flag = 1;  // the other ranks stop waiting on collectives with us
    }
    pthread_mutex_lock(&g->mu);
    g->rc[r] = rc;
    if (++g->done == g->tp) pthread_cond_broadcast(&g->done_cv);
    pthread_mutex_unlock(&g->mu);
  }
}

// Spin barrier among the ranks' threads inside a step (engine.cuh: lockstep), bounded by the
// step's deadline and by another rank's failure.
int rendezvous(void *p, char *err) {
  fgcu_engine *g = (fgcu_engine *)p;
  const unsigned gen = __atomic_load_n(&g->bar_gen, __ATOMIC_ACQUIRE);
  if (__atomic_add_fetch(&g->bar_count, 1, __ATOMIC_ACQ_REL) == g->tp) {
    __atomic_store_n(&g->bar_count, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&g->bar_gen, 1, __ATOMIC_RELEASE);
    return 0;
  }
  for (int spins = 0; __atomic_load_n(&g->bar_gen, __ATOMIC_ACQUIRE) == gen; spins++) {
    if (g->abort_flag) {
      snprintf(err, 512, "stopped: another tensor-parallel rank failed");
      return FG_ERR_DEVICE;
    }
    if ((spins & 1023) == 1023 && now_ns() > g->wait.deadline_ns) {
      snprintf(err, 512, "a rank did not reach its collective within %d ms", g->timeout_ms);
      return FG_ERR_DEVICE;
    }
    if (spins > 20000) sched_yield();
  }
  return 0;
}

// Ends every in-flight collective; the group cannot run another step.
void break_group(fgcu_engine *g, const char *why) {
  if (g->broken) return;
  g->broken = true;
  snprintf(g->broken_msg, sizeof g->broken_msg, "%s", why);
  for (int r = 0; r < g->tp; r++)
    if (g->comms[r]) {
      g->nccl->comm_abort(g->comms[r]);
      g->comms[r] = nullptr;
    }
}

}  // namespace

extern "C" int32_t fgcu_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

extern "C" int fgcu_engine_create(const fgcu_model *m, int32_t tp, int32_t timeout_ms, fgcu_engine **out,
                                 char *err) {
  *out = nullptr;
  if (m->mla) {  // shapes the latent attention kernels take: refused before any device work
    MlaModel dims;
    FGCU_CHECK(mla_model_of(*m, &dims, err));
  }
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    snprintf(err, 512, "no CUDA device is visible (driver missing or no GPU)");
    return FG_ERR_DEVICE;
  }
  if (tp < 1 || tp > kMaxRanks) {
    snprintf(err, 512, "tensor_parallel must be in [1, %d], got %d", kMaxRanks, tp);
    return FG_ERR_INVALID_ARGUMENT;
  }
  if (tp > n) {
    snprintf(err, 512, "tensor_parallel %d needs %d CUDA devices; %d visible", tp, tp, n);
    return FG_ERR_DEVICE;
  }
  fgcu_engine *g = new fgcu_engine();
  g->tp = tp;
  // The spec's (the ABI's) timeout wins; the environment only fills in when the spec has none.
  const int env_timeout_ms = fg_knob_int(FG_KNOB_TP_TIMEOUT_MS);
  g->timeout_ms = timeout_ms > 0 ? timeout_ms : env_timeout_ms > 0 ? env_timeout_ms : kDefaultTimeoutMs;
  auto fail = [&](int rc) {
    fgcu_engine_destroy(g);
    return rc;
  };
  if (tp > 1) {
    setenv("NCCL_NVLS_ENABLE", "0", 0);  // NVLink multicast stays off unless asked for
    if (int rc = nccl_open(&g->nccl, err)) return fail(rc);
    int devs[kMaxRanks];
    for (int r = 0; r < tp; r++) devs[r] = r;
    const ncclResult_t nr = g->nccl->comm_init_all(g->comms, tp, devs);
    if (nr != 0) {
      snprintf(err, 512, "NCCL init over %d devices: %s", tp, g->nccl->error_string(nr));
      for (int r = 0; r < tp; r++) g->comms[r] = nullptr;
      return fail(FG_ERR_DEVICE);
    }
  }
  const int fault = fg_knob_int(FG_KNOB_TP_FAULT_RANK);  // test hook: that rank skips collectives
  for (int r = 0; r < tp; r++) {
    if (int rc = set_device(r, err)) return fail(rc);
    if (int rc = rank_create(m, r, r, tp, &g->ranks[r], err)) {
      if (tp > 1) {
        char msg[512];
        snprintf(msg, sizeof msg, "rank %d: %s", r, err);
        snprintf(err, 512, "%s", msg);
      }
      return fail(rc);
    }
    g->ranks[r]->nccl = g->nccl;
    g->ranks[r]->comm = g->comms[r];
    g->ranks[r]->skip_collectives = tp > 1 && fault == r;
    g->ranks[r]->rendezvous = rendezvous;
    g->ranks[r]->group = g;
  }
  for (int r = 0; tp > 1 && r < tp; r++) {
    WorkerArg *a = (WorkerArg *)malloc(sizeof(WorkerArg));
    a->g = g, a->rank = r;
    if (pthread_create(&g->threads[r], nullptr, worker, a) != 0) {
      free(a);
      snprintf(err, 512, "tensor parallel: cannot start the thread of rank %d", r);
      return fail(FG_ERR_INTERNAL);
    }
    g->started++;
  }
  *out = g;
  return 0;
}

extern "C" void fgcu_engine_destroy(fgcu_engine *g) {
  if (!g) return;
  if (g->timing.f) {
    fclose(g->timing.f);
    for (cudaEvent_t ev : g->timing.ev) cudaEventDestroy(ev);
  }
  pthread_mutex_lock(&g->mu);
  g->quit = true;
  pthread_cond_broadcast(&g->wake);
  pthread_mutex_unlock(&g->mu);
  bool all_joined = true;
  for (int r = 0; r < g->started; r++) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    if (pthread_timedjoin_np(g->threads[r], nullptr, &ts) != 0) {
      pthread_detach(g->threads[r]);
      all_joined = false;
    }
  }
  if (!all_joined) {  // a rank is stuck inside CUDA or NCCL: leak it rather than hang or crash
    fprintf(stderr, "fastgen: a tensor-parallel rank did not stop; its device memory is leaked\n");
    return;
  }
  for (int r = 0; r < g->tp; r++) {
    if (!g->ranks[r]) continue;
    cudaSetDevice(g->ranks[r]->device);
    rank_destroy(g->ranks[r]);
  }
  for (int r = 0; r < g->tp; r++)
    if (g->comms[r]) g->nccl->comm_destroy(g->comms[r]);
  delete g;
}

extern "C" int fgcu_engine_load(fgcu_engine *g, int32_t layer, int32_t expert, int32_t kind, int32_t dtype,
                               const void *data, uint64_t numel, char *err) {
  for (int r = 0; r < g->tp; r++) {
    FGCU_CHECK(set_device(g->ranks[r]->device, err));
    FGCU_CHECK(rank_load(g->ranks[r], layer, expert, kind, dtype, data, numel, err));
  }
  return 0;
}

extern "C" int fgcu_engine_load_fp8(fgcu_engine *g, int32_t layer, int32_t expert, int32_t kind, const uint8_t *q,
                                    int64_t rows, int64_t cols, const float *scales, int64_t kblock, float input_scale,
                                    char *err) {
  if (g->tp != 1) {
    snprintf(err, 512, "FP8 weights are kept on the device with tensor_parallel 1 only");
    return FG_ERR_UNSUPPORTED;
  }
  FGCU_CHECK(set_device(g->ranks[0]->device, err));
  return rank_load_fp8(g->ranks[0], layer, expert, kind, q, rows, cols, scales, kblock, input_scale, err);
}

extern "C" int32_t fgcu_engine_weight_dtype(fgcu_engine *g, int32_t layer, int32_t expert, int32_t kind) {
  return rank_weight_dtype(g->ranks[0], layer, expert, kind);  // every rank holds the same dtypes
}

extern "C" int fgcu_engine_finalize(fgcu_engine *g, int32_t block_size, int32_t num_blocks, float memory_fraction,
                                   int32_t kv_dtype, const float *k_scales, const float *v_scales, fgcu_info *info,
                                   char *err) {
  int64_t blocks = INT64_MAX;
  int tightest = 0;
  for (int r = 0; r < g->tp; r++) {
    int64_t n = 0;
    FGCU_CHECK(set_device(g->ranks[r]->device, err));
    FGCU_CHECK(rank_kv_dtype(g->ranks[r], kv_dtype == FG_F8_E4M3, k_scales, v_scales, err));
    FGCU_CHECK(rank_kv_fit(g->ranks[r], block_size, memory_fraction, &n, err));
    if (n < blocks) blocks = n, tightest = r;
  }
  if (num_blocks > 0) {
    blocks = num_blocks;
  } else if (blocks == 0) {
    const fgcu_rank *e = g->ranks[tightest];
    snprintf(err, 512, "out of device memory: %.2f GiB free on device %d after weights holds no KV block",
             (double)e->free_after_weights / (1ull << 30), e->device);
    return FG_ERR_OUT_OF_MEMORY;
  }
  fgcu_info sum{};
  for (int r = 0; r < g->tp; r++) {
    fgcu_info one{};
    FGCU_CHECK(set_device(g->ranks[r]->device, err));
    FGCU_CHECK(rank_kv_alloc(g->ranks[r], blocks, &one, err));
    sum.num_blocks = one.num_blocks, sum.block_size = one.block_size;
    sum.weight_bytes += one.weight_bytes, sum.kv_bytes += one.kv_bytes;
  }
  *info = sum;
  return 0;
}

extern "C" int fgcu_engine_launch(fgcu_engine *g, const fg_batch *b, char *err) {
  if (g->tp != 1) {
    snprintf(err, 512, "fgcu_engine_launch: tensor-parallel steps run whole (fgcu_engine_step)");
    return FG_ERR_INTERNAL;
  }
  fgcu_rank *e = g->ranks[0];
  FGCU_CHECK(set_device(e->device, err));
  const bool timed = timing_on(g);
  if (timed) g->timing.launch_ns = now_ns(), cudaEventRecord(g->timing.ev[0], e->stream);
  FGCU_CHECK(rank_prepare(e, b, &g->launched, err));
  FGCU_CHECK(rank_forward(e, g->launched, err));
  if (timed) cudaEventRecord(g->timing.ev[1], e->stream), g->timing.armed = true;
  return 0;
}

extern "C" int fgcu_engine_finish(fgcu_engine *g, const int32_t *row_masks, const uint32_t *masks,
                                 int32_t num_masks, fg_step_output *out, char *err) {
  fgcu_rank *e = g->ranks[0];
  FGCU_CHECK(set_device(e->device, err));
  auto &t = g->timing;
  const bool timed = t.armed;
  const int64_t f0 = timed ? now_ns() : 0;
  t.armed = false;
  if (row_masks && out)
    FGCU_CHECK(late_masks(e->late, row_masks, masks, num_masks, (int)e->m.vocab_size, e->stream, &g->launched, err));
  if (timed) cudaEventRecord(t.ev[2], e->stream);
  const int rc = rank_complete(e, g->launched, out, err);
  if (timed && rc == 0) {
    float fwd = 0, idle = 0;
    cudaEventElapsedTime(&fwd, t.ev[0], t.ev[1]);
    cudaEventElapsedTime(&idle, t.ev[1], t.ev[2]);
    const int64_t f1 = now_ns();
    fprintf(t.f, "late=%d rows=%d tokens=%d fwd_gpu_ms=%.3f gap_gpu_ms=%.3f launch_to_finish_ms=%.3f finish_ms=%.3f\n",
            row_masks && out ? 1 : 0, g->launched.R, g->launched.T, fwd, idle, (f0 - t.launch_ns) / 1e6, (f1 - f0) / 1e6);
    cudaGetLastError();
  }
  return rc;
}

extern "C" int fgcu_engine_step(fgcu_engine *g, const fg_batch *b, fg_step_output *out, char *err) {
  if (b->num_tokens == 0) return 0;
  if (g->tp == 1) {
    fgcu_rank *e = g->ranks[0];
    FGCU_CHECK(set_device(e->device, err));
    Meta m;
    FGCU_CHECK(rank_prepare(e, b, &m, err));
    return rank_run(e, m, out, err);
  }
  if (g->broken) {
    snprintf(err, 512, "tensor-parallel engine failed earlier and cannot run: %s", g->broken_msg);
    return FG_ERR_DEVICE;
  }
  pthread_mutex_lock(&g->mu);
  g->batch = b, g->out = out;
  g->done = 0, g->arrived = 0, g->prep_failed = false, g->abort_flag = 0, g->bar_count = 0;
  for (int r = 0; r < g->tp; r++) g->rc[r] = 0, g->ran[r] = false;
  g->wait.abort = &g->abort_flag;
  g->wait.timeout_ms = g->timeout_ms;
  g->wait.deadline_ns = now_ns() + (int64_t)g->timeout_ms * 1000000;
  g->job++;
  pthread_cond_broadcast(&g->wake);
  // The ranks' own waits end at the deadline; the grace covers a rank stuck inside a call.
  timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  const int64_t ns = until.tv_nsec + ((int64_t)g->timeout_ms + 5000) * 1000000;
  until.tv_sec += ns / 1000000000, until.tv_nsec = ns % 1000000000;
  bool timed_out = false;
  while (g->done < g->tp && !timed_out)
    timed_out = pthread_cond_timedwait(&g->done_cv, &g->mu, &until) == ETIMEDOUT;
  const bool finished = g->done == g->tp;
  pthread_mutex_unlock(&g->mu);

  if (!finished) {
    snprintf(err, 512, "tensor parallel: a rank did not finish its step within %d ms", g->timeout_ms);
    break_group(g, err);
    return FG_ERR_DEVICE;
  }
  // The first real failure (not a rank that stopped because another failed).
  int bad = -1;
  for (int r = 0; r < g->tp; r++)
    if (g->rc[r] && (bad < 0 || strncmp(g->err[bad], "stopped:", 8) == 0)) bad = r;
  if (bad < 0) return 0;
  snprintf(err, 512, "tensor-parallel rank %d: %s", bad, g->err[bad]);
  bool in_flight = false;
  for (int r = 0; r < g->tp; r++) in_flight |= g->ran[r];
  if (in_flight) break_group(g, err);
  return g->rc[bad];
}
