// One process-wide pool of worker threads for the CPU backend. Sized to every core by default;
// FASTGEN_NUM_THREADS or fg_set_num_threads() override. parallel_for() runs tasks 0..n-1 on the
// workers and the calling thread, and returns when all are done.
#pragma once
#include <cstdint>
#include <functional>

namespace fg {
namespace cpu {

// fn(task) for every task in [0, num_tasks). Calls from several threads take turns; a call from
// inside a task runs inline (no nesting).
void parallel_for(int64_t num_tasks, const std::function<void(int64_t)> &fn);

int num_threads();
// n >= 1 sets the pool size; n == 0 restores the default (FASTGEN_NUM_THREADS or every core).
void set_num_threads(int n);

}  // namespace cpu
}  // namespace fg
