#include "core/pass_thread.h"

#include <utility>

namespace fg {

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
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  else wake_.notify_one();
}

void PassThread::wait() {
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
    done_.notify_all();
  }
}

}  // namespace fg
