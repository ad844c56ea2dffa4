// The CPU backend's half of fg_step_launch: one thread per engine that runs a forward pass while
// the caller goes on (it computes grammar masks meanwhile), joined by fg_step_finish. The job
// itself still spreads over the process-wide pool (cpu/thread_pool.h); this thread is its caller.
#pragma once
#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace fg {

class PassThread {
 public:
  PassThread() = default;
  ~PassThread();  // waits for a running job, then stops the thread
  PassThread(const PassThread &) = delete;
  PassThread &operator=(const PassThread &) = delete;

  // Runs job() on the thread (started at the first call). One job at a time: the previous one
  // must have been waited for.
  void start(std::function<void()> job);
  // Blocks until the job is done; rethrows what it threw. No-op when no job was started.
  // Spins (yielding) up to kSpinNs first: see pass_thread.cpp.
  void wait();

 private:
  void loop();

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::function<void()> job_;
  bool pending_ = false;  // a job was started and not yet waited for
  bool running_ = false;  // the thread has it and has not finished it
  std::atomic<bool> busy_{false};  // running_, readable without mu_ (wait()'s spin)
  bool quit_ = false;
  std::exception_ptr error_;
};

}  // namespace fg
