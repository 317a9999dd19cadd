// The simulated server's capacity: at most `capacity` requests are served
// at once (like a GPU server's batch); the rest wait their turn in FIFO
// order (vLLM's queue) or, with TryAcquire, are turned away (a hosted API's
// 429). A capacity of 0 or less admits everyone.
//
// Thread-safety: thread-safe. Callbacks queued by Acquire run on the thread
// that calls Release, without the gate's lock held.
#ifndef MEDEVAL_SIM_CAPACITY_GATE_H_
#define MEDEVAL_SIM_CAPACITY_GATE_H_

#include <cstddef>
#include <deque>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace medeval::sim {

class CapacityGate {
 public:
  explicit CapacityGate(int capacity) : capacity_(capacity) {}

  // Takes a slot and returns true, or queues `on_granted` (run later by
  // Release, with the slot) and returns false.
  bool Acquire(std::function<void()> on_granted) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (capacity_ <= 0 || used_ < capacity_) {
      ++used_;
      return true;
    }
    waiters_.push_back(std::move(on_granted));
    return false;
  }

  bool TryAcquire() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (capacity_ <= 0 || used_ < capacity_) {
      ++used_;
      return true;
    }
    return false;
  }

  void Release() ABSL_LOCKS_EXCLUDED(mu_) {
    std::function<void()> next;
    {
      absl::MutexLock lock(&mu_);
      if (waiters_.empty()) {
        --used_;
        return;
      }
      next = std::move(waiters_.front());
      waiters_.pop_front();
    }
    next();  // the slot passes to the waiter
  }

  // Forgets the queued callbacks (shutting down): they are destroyed here,
  // on the caller's thread, without being run.
  void DropWaiters() ABSL_LOCKS_EXCLUDED(mu_) {
    std::deque<std::function<void()>> dropped;
    {
      absl::MutexLock lock(&mu_);
      dropped.swap(waiters_);
    }
  }

  size_t waiting() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return waiters_.size();
  }

 private:
  absl::Mutex mu_;
  const int capacity_;
  int used_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::function<void()>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_CAPACITY_GATE_H_
