#include "cpu/thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/knobs.h"

namespace fg {
namespace cpu {
namespace {

thread_local bool t_in_task = false;

int default_threads() {
  if (const int n = fg_knob_int(FG_KNOB_NUM_THREADS); n >= 1) return n;
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? (int)hw : 1;
}

class Pool {
 public:
  explicit Pool(int n) : size_(n) {
    for (int i = 1; i < n; i++) workers_.emplace_back([this] { worker_loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto &t : workers_) t.join();
  }
  int size() const { return size_; }

  // Caller holds g_run_mutex, so one job at a time.
  void run(int64_t num_tasks, const std::function<void(int64_t)> &fn) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      num_tasks_ = num_tasks;
      next_.store(0);
      pending_workers_ = (int)workers_.size();
      generation_++;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lk(mu_);
    done_.wait(lk, [this] { return pending_workers_ == 0; });
    job_ = nullptr;
    if (error_) {
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

 private:
  void work() {
    t_in_task = true;
    for (;;) {
      int64_t i = next_.fetch_add(1);
      if (i >= num_tasks_) break;
      try {
        (*job_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
        next_.store(num_tasks_);  // skip the rest
      }
    }
    t_in_task = false;
  }
  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work();
      std::lock_guard<std::mutex> lk(mu_);
      if (--pending_workers_ == 0) done_.notify_one();
    }
  }

  int size_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  bool stop_ = false;
  uint64_t generation_ = 0;
  int pending_workers_ = 0;
  const std::function<void(int64_t)> *job_ = nullptr;
  int64_t num_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;  // first exception thrown by a task, rethrown by run()
};

std::mutex g_run_mutex;  // serializes jobs and pool replacement
std::unique_ptr<Pool> g_pool;

Pool &pool_locked() {
  if (!g_pool) g_pool.reset(new Pool(default_threads()));
  return *g_pool;
}

}  // namespace

void parallel_for(int64_t num_tasks, const std::function<void(int64_t)> &fn) {
  if (num_tasks <= 0) return;
  if (t_in_task || num_tasks == 1) {
    for (int64_t i = 0; i < num_tasks; i++) fn(i);
    return;
  }
  std::lock_guard<std::mutex> lk(g_run_mutex);
  Pool &p = pool_locked();
  if (p.size() == 1) {
    for (int64_t i = 0; i < num_tasks; i++) fn(i);
    return;
  }
  p.run(num_tasks, fn);
}

int num_threads() {
  std::lock_guard<std::mutex> lk(g_run_mutex);
  return pool_locked().size();
}

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(g_run_mutex);
  g_pool.reset();
  g_pool.reset(new Pool(n >= 1 ? n : default_threads()));
}

}  // namespace cpu
}  // namespace fg
