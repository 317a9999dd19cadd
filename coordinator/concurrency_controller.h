// ConcurrencyController picks how many requests a model endpoint should have
// in flight (`--concurrency auto`): the most throughput at the least latency.
//
// Method: throughput hill climbing with multiplicative decrease, in windows.
//  - Slow start (as TCP): the limit doubles each window while throughput rises
//    by at least `rise`; when it stops rising the limit returns to the best
//    one seen.
//  - Steady state: steps of max(1, 10%) towards more throughput (gradient
//    sign); a fall below the best throughput returns to the best limit;
//    latency grown by `latency_growth` without a throughput gain (a queue
//    filling, a KV cache preempting) steps down (Vegas: queueing is a signal
//    before loss); flat windows settle, and every `probe_every` settled
//    windows one step up checks whether the endpoint can take more.
//  - Loss: any 429 or timed-out request in a window multiplies the limit by
//    `decrease` (AIMD's multiplicative decrease), whatever the throughput
//    said, but not below what the endpoint served in that window (answers/s
//    x latency, Little's law, as BBR sizes its window), and the limit stays
//    below where the loss happened until `forget_loss` windows pass without
//    one (no probing into the same wall); below that point the climb back
//    is additive, a step every other settled window.
// The best throughput is measured again whenever the limit is at the best
// one, so an endpoint that slows down (another tenant, a restart) is
// followed instead of chased.
//
// Thread-safety: not thread-safe; its owner (the scheduler, under its mutex)
// serialises calls.
#ifndef MEDEVAL_COORDINATOR_CONCURRENCY_CONTROLLER_H_
#define MEDEVAL_COORDINATOR_CONCURRENCY_CONTROLLER_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace medeval {

class ConcurrencyController {
 public:
  struct Options {
    int initial = 8;
    int min = 1;
    int max = 256;  // --max-concurrency
    absl::Duration window = absl::Seconds(5);
    int min_answers = 4;          // a window with fewer says nothing
    double rise = 0.10;           // slow start goes on while throughput rises this much
    double gain = 0.03;           // a steady step counts as a gain above this
    double latency_growth = 1.2;  // latency this much above the best's without gain: back off
    double decrease = 0.7;        // on a 429 or a timeout
    int forget_loss = 30;         // windows before the limit may pass a loss point again
    int probe_every = 6;          // settled windows before probing one step up
  };

  ConcurrencyController(Options options, absl::Time now);

  // What happened since the last call of Tick.
  void OnAnswer(absl::Duration latency, int64_t tokens);
  void OnRateLimited() { ++window_.rate_limited; }
  void OnTimeout() { ++window_.timeouts; }

  // Closes the window when it is due; returns true when the limit changed.
  bool Tick(absl::Time now);

  // Another worker joined the model: during the first window the limit
  // grows by its initial share, as if it had been there from the start.
  void OnWorkerJoined(int initial_share);
  // The ceiling: the sum of the model's workers' --max-concurrency.
  void set_max(int max);

  int limit() const { return limit_; }
  // Why the limit last changed, for progress and status.
  const std::string& reason() const { return reason_; }
  // The kind of the last change, a short label for metrics: start,
  // slow_start, gain, fell, latency, probe, rate_limited, timeout.
  const char* cause() const { return cause_; }

 private:
  struct Window {
    int64_t answers = 0;
    int64_t tokens = 0;
    absl::Duration latency_sum;
    int rate_limited = 0;
    int timeouts = 0;
  };
  void Set(int limit, const char* cause, std::string reason);
  int Step() const;

  Options options_;
  absl::Time window_start_;
  Window window_;
  int limit_;
  std::string reason_ = "start";
  const char* cause_ = "start";
  bool slow_start_ = true;
  double best_throughput_ = 0;  // answers (or tokens) per second
  int best_limit_ = 0;
  double best_latency_s_ = 0;
  double last_throughput_ = 0;
  int last_limit_ = 0;
  int settled_windows_ = 0;
  int ceiling_ = 0;  // below the last loss point; 0: none
  int windows_since_loss_ = 0;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_CONCURRENCY_CONTROLLER_H_
