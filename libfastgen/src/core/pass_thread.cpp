#include "core/pass_thread.h"

#include <sched.h>

#include <chrono>
#include <utility>

namespace fg {
namespace {

// How long wait() spins (yielding the core to any runnable thread) before it sleeps on the
// condition variable. A caller that sleeps lets its core go idle, and on a VM every wake of an
// idle vCPU is slow: on the 2-core dev VM a batch-1 decode of the demo model took 1.7 ms with a
// sleeping caller against 0.5 ms with a spinning one (the pool's wakes inside the pass got
// cheap too), and batch 64 was no slower. Passes longer than this pay one wake at the end.
constexpr auto kSpin = std::chrono::milliseconds(2);

}  // namespace

PassThread::~PassThread() {
  if (!thread_.joinable()) return;
  {
    std::unique_lock<std::mutex> lk(mu_);
    done_.wait(lk, [this] { return !running_; });
    quit_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void PassThread::start(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = std::move(job);
    error_ = nullptr;
    pending_ = running_ = true;
    busy_.store(true, std::memory_order_relaxed);
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  else wake_.notify_one();
}

void PassThread::wait() {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  while (busy_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) sched_yield();
  std::unique_lock<std::mutex> lk(mu_);
  if (!pending_) return;
  done_.wait(lk, [this] { return !running_; });
  pending_ = false;
  job_ = nullptr;
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void PassThread::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    wake_.wait(lk, [this] { return quit_ || running_; });
    if (quit_) return;
    lk.unlock();
    std::exception_ptr error;
    try {
      job_();
    } catch (...) {
      error = std::current_exception();
    }
    lk.lock();
    error_ = error;
    running_ = false;
    busy_.store(false, std::memory_order_release);
    done_.notify_all();
  }
}

}  // namespace fg
