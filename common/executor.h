// A fixed pool of threads running posted closures in FIFO order, for work
// that must not run inside gRPC reactions (disk I/O, merging outputs).
//
// Thread-safe. The destructor runs what is queued, then joins. An exception
// thrown by a task is caught and logged; the pool keeps running.
#ifndef MEDEVAL_COMMON_EXECUTOR_H_
#define MEDEVAL_COMMON_EXECUTOR_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace medeval {

class Executor {
 public:
  explicit Executor(int threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void Post(std::function<void()> fn);

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace medeval

#endif  // MEDEVAL_COMMON_EXECUTOR_H_
