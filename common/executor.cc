#include "common/executor.h"

#include <exception>

#include "common/log.h"

namespace medeval {

Executor::Executor(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

Executor::~Executor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

void Executor::Post(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(fn));
}

bool Executor::HasWorkOrStopping() const { return stopping_ || !queue_.empty(); }

void Executor::Loop() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      // Await re-evaluates the condition whenever mu_ is released, so no signal is needed.
      mu_.Await(absl::Condition(this, &Executor::HasWorkOrStopping));
      if (queue_.empty()) return;  // stopping and drained
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    // A throwing task must not take the process (or the pool) down; tasks
    // that own a call end it themselves.
    try {
      fn();
    } catch (const std::exception& e) {
      MEDEVAL_LOG(ERROR) << "background task failed: " << e.what();
    } catch (...) {
      MEDEVAL_LOG(ERROR) << "background task failed (unknown exception)";
    }
  }
}

}  // namespace medeval
