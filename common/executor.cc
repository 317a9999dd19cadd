#include "common/executor.h"

#include <exception>

#include "common/log.h"

namespace medeval {

Executor::Executor(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Executor::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void Executor::Loop() {
  while (true) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
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
