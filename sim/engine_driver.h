// Runs a BatchingEngine (sim/batching_engine.h) in real time on an asio
// io_context: one step after another on a timer while there is work, and a
// callback for every request whose last token is out. Also applies the
// engine's POST /control settings and reports it in /stats.
//
// Steps are chained on absolute deadlines, so a timer that fires a little
// late does not slow the engine down; one that fires much later (an
// overloaded machine) restarts the cadence from now instead of catching up
// in a burst.
//
// Thread-safety: Submit, Stats, Control, options and DropCallbacks may be
// called from any thread (the engine and the callbacks are behind one mutex);
// steps run on the driver's own strand; callbacks run there without the lock.
#ifndef MEDEVAL_SIM_ENGINE_DRIVER_H_
#define MEDEVAL_SIM_ENGINE_DRIVER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "sim/batching_engine.h"

namespace medeval::sim {

class EngineDriver {
 public:
  EngineDriver(boost::asio::io_context& ioc, EngineOptions options);
  EngineDriver(const EngineDriver&) = delete;
  EngineDriver& operator=(const EngineDriver&) = delete;

  // Queues a request; `on_done` runs once its completion is generated. An
  // error (the request can never fit in the KV cache) is returned at once and
  // `on_done` is dropped.
  absl::Status Submit(int64_t prompt_tokens, int64_t completion_tokens,
                      std::function<void()> on_done) ABSL_LOCKS_EXCLUDED(mu_);

  // The "engine" part of /stats.
  nlohmann::json Stats() const ABSL_LOCKS_EXCLUDED(mu_);
  void ResetStats() ABSL_LOCKS_EXCLUDED(mu_);

  // Applies one POST /control setting: step_ms, step_ms_per_seq,
  // step_ms_per_queued, prefill_ms_per_1k_tokens, kv_tokens, max_running,
  // preempt (0/1). Returns false if `key` is none of these; `error` is set
  // when the value is wrong.
  bool Control(const std::string& key, const nlohmann::json& value, std::string* error)
      ABSL_LOCKS_EXCLUDED(mu_);

  EngineOptions options() const ABSL_LOCKS_EXCLUDED(mu_);

  // Forgets the callbacks of unfinished requests, destroying them here
  // without running them: for shutting down once the io_context has stopped.
  void DropCallbacks() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using Clock = std::chrono::steady_clock;
  void Step() ABSL_LOCKS_EXCLUDED(mu_);     // on strand_
  void EndStep() ABSL_LOCKS_EXCLUDED(mu_);  // on strand_

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;  // used on strand_ only
  Clock::time_point deadline_;       // of the last step; on strand_ only
  mutable absl::Mutex mu_;
  BatchingEngine engine_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool stepping_ ABSL_GUARDED_BY(mu_) = false;  // a step is scheduled or running
  EngineStats base_ ABSL_GUARDED_BY(mu_);       // counters at the last /stats/reset
};

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_ENGINE_DRIVER_H_
