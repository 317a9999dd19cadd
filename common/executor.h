// A fixed pool of threads running posted closures in FIFO order, for work
// that must not run inside gRPC reactions (disk I/O, merging outputs).
//
// Thread-safe. The destructor runs what is queued, then joins. An exception
// thrown by a task is caught and logged; the pool keeps running.
#ifndef MEDEVAL_COMMON_EXECUTOR_H_
#define MEDEVAL_COMMON_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace medeval {

class Executor {
 public:
  explicit Executor(int threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void Post(std::function<void()> fn) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // set in the constructor, joined in the destructor
};

}  // namespace medeval

#endif  // MEDEVAL_COMMON_EXECUTOR_H_
