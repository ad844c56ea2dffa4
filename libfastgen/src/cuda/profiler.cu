// FASTGEN_PROFILE=1: device time per op kind of the forward pass, from CUDA events recorded
// between ops (no graphs then), summed over steps and printed to stderr when the engine goes.
#include <stdlib.h>
#include <string.h>

#include "cuda/engine.cuh"

namespace fgcu {

struct Profiler {
  static constexpr int kEvents = 1024, kKinds = 32;
  cudaEvent_t ev[kEvents];
  const char *what[kEvents];
  int n = 0, steps = 0;
  const char *kind[kKinds];
  double ms[kKinds];
  int calls[kKinds];
  int kinds = 0;
};

Profiler *profiler_create() {
  if (!fg_knob_int(FG_KNOB_PROFILE)) return nullptr;
  Profiler *p = new Profiler();
  for (int i = 0; i < Profiler::kEvents; i++) cudaEventCreate(&p->ev[i]);
  return p;
}

void profiler_mark(Profiler *p, cudaStream_t s, const char *what) {
  if (!p) return;
  if (p->n == 0) {  // the start mark
    cudaEventRecord(p->ev[0], s);
    p->what[0] = "";
    p->n = 1;
  }
  if (p->n >= Profiler::kEvents) return;
  cudaEventRecord(p->ev[p->n], s);
  p->what[p->n++] = what;
}

void profiler_step_done(Profiler *p) {
  if (!p || p->n < 2) return;
  cudaEventSynchronize(p->ev[p->n - 1]);
  for (int i = 1; i < p->n; i++) {
    float t = 0;
    cudaEventElapsedTime(&t, p->ev[i - 1], p->ev[i]);
    int k = 0;
    while (k < p->kinds && strcmp(p->kind[k], p->what[i]) != 0) k++;
    if (k == p->kinds && k < Profiler::kKinds) p->kind[p->kinds++] = p->what[i], p->ms[k] = 0, p->calls[k] = 0;
    if (k < Profiler::kKinds) p->ms[k] += t, p->calls[k]++;
  }
  p->n = 0;
  p->steps++;
}

void profiler_dump(Profiler *p) {
  if (!p) return;
  double total = 0;
  for (int k = 0; k < p->kinds; k++) total += p->ms[k];
  fprintf(stderr, "fastgen profile: %d steps, %.3f ms device time per step\n", p->steps,
          p->steps ? total / p->steps : 0.0);
  for (int k = 0; k < p->kinds; k++)
    fprintf(stderr, "  %-22s %9.4f ms/step %6.1f%%  (%d calls)\n", p->kind[k], p->ms[k] / (p->steps ? p->steps : 1),
            total > 0 ? 100 * p->ms[k] / total : 0.0, p->calls[k]);
  for (int i = 0; i < Profiler::kEvents; i++) cudaEventDestroy(p->ev[i]);
  delete p;
}

}  // namespace fgcu
