#include "coordinator/concurrency_controller.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace medeval {

ConcurrencyController::ConcurrencyController(Options options, absl::Time now)
    : options_(options),
      window_start_(now),
      limit_(std::clamp(options.initial, options.min, options.max)) {}

void ConcurrencyController::OnAnswer(absl::Duration latency, int64_t tokens) {
  ++window_.answers;
  window_.tokens += tokens;
  window_.latency_sum += latency;
}

int ConcurrencyController::Step() const {
  return std::max(1, static_cast<int>(std::lround(limit_ * 0.1)));
}

void ConcurrencyController::OnWorkerJoined(int initial_share) {
  if (slow_start_ && best_limit_ == 0) {
    limit_ = std::clamp(limit_ + initial_share, options_.min, options_.max);
  }
}

void ConcurrencyController::set_max(int max) {
  options_.max = std::max(options_.min, max);
  limit_ = std::min(limit_, options_.max);
}

void ConcurrencyController::Set(int limit, const char* cause, std::string reason) {
  cause_ = cause;
  const int high = ceiling_ > 0 ? std::min(ceiling_, options_.max) : options_.max;
  limit_ = std::clamp(limit, options_.min, std::max(options_.min, high));
  reason_ = std::move(reason);
}

bool ConcurrencyController::Tick(absl::Time now) {
  const absl::Duration elapsed = now - window_start_;
  if (elapsed < options_.window) return false;
  const Window w = window_;
  window_ = Window();
  window_start_ = now;
  const int before = limit_;

  // Loss first: the endpoint said no, whatever the throughput was.
  if (w.rate_limited > 0 || w.timeouts > 0) {
    slow_start_ = false;
    settled_windows_ = 0;
    windows_since_loss_ = 0;
    ceiling_ = std::max(options_.min, before - 1);
    best_throughput_ *= 0.9;  // what was best may have been past the limit
    if (best_limit_ > ceiling_) best_limit_ = ceiling_;
    // Multiplicative decrease, but not below what the endpoint did sustain
    // in the window: answers/s x their latency is the concurrency it served
    // (Little's law; BBR's bandwidth-delay product), so a rate limit just
    // above the limit costs one small step instead of 30%.
    int lower = static_cast<int>(before * options_.decrease);
    if (w.answers >= options_.min_answers) {
      const double served = static_cast<double>(w.answers) / absl::ToDoubleSeconds(elapsed) *
                            absl::ToDoubleSeconds(w.latency_sum) / static_cast<double>(w.answers);
      lower = std::max(lower, std::min(before - 1, static_cast<int>(served)));
    }
    Set(lower, w.rate_limited > 0 ? "rate_limited" : "timeout",
        w.rate_limited > 0
            ? absl::StrFormat("%d answered 429: down to %d", w.rate_limited, lower)
            : absl::StrFormat("%d requests timed out: down to %d", w.timeouts, lower));
    // The decrease was forced, not a step of the climb: a gain from here
    // means going up again (towards the loss point, never to it).
    last_limit_ = limit_;
    last_throughput_ = 0;
    return limit_ != before;
  }
  if (ceiling_ > 0 && ++windows_since_loss_ >= options_.forget_loss) ceiling_ = 0;
  if (w.answers < options_.min_answers) return false;  // too little to judge

  const double throughput = static_cast<double>(w.answers) / absl::ToDoubleSeconds(elapsed);
  const double latency_s = absl::ToDoubleSeconds(w.latency_sum) / static_cast<double>(w.answers);

  if (slow_start_) {
    if (best_limit_ == 0 || throughput >= best_throughput_ * (1 + options_.rise)) {
      best_throughput_ = throughput;
      best_limit_ = limit_;
      best_latency_s_ = latency_s;
      Set(limit_ * 2, "slow_start",
          absl::StrFormat("slow start: %.1f answers/s, rising", throughput));
      if (limit_ == before) slow_start_ = false;  // at the ceiling
    } else {
      slow_start_ = false;
      Set(best_limit_, "fell",
          absl::StrFormat("throughput stopped rising (%.1f answers/s): back to the best",
                          throughput));
    }
    last_limit_ = before;
    last_throughput_ = throughput;
    return limit_ != before;
  }

  if (before == best_limit_) {
    best_throughput_ = throughput;
    best_latency_s_ = latency_s;
  }
  if (throughput > best_throughput_ * (1 + options_.gain)) {
    // A gain: keep going the way that brought it.
    const bool went_up = before >= last_limit_;
    best_throughput_ = throughput;
    best_limit_ = before;
    best_latency_s_ = latency_s;
    settled_windows_ = 0;
    Set(went_up ? before + Step() : before - Step(), "gain",
        absl::StrFormat("%.1f answers/s, more than before", throughput));
  } else if (throughput < best_throughput_ * (1 - options_.gain) && before != best_limit_) {
    settled_windows_ = 0;
    Set(best_limit_, "fell",
        absl::StrFormat("throughput fell to %.1f answers/s: back to the best", throughput));
  } else if (latency_s > best_latency_s_ * options_.latency_growth && before > best_limit_) {
    settled_windows_ = 0;
    Set(before - Step(), "latency",
        absl::StrFormat("latency %.2fs without more throughput: less", latency_s));
  } else if (++settled_windows_ >= (before < ceiling_ ? 2 : options_.probe_every)) {
    // Below a loss point the climb back is additive (AIMD), a step every
    // other settled window; elsewhere probing is rarer.
    settled_windows_ = 0;
    Set(before + Step(), "probe", "settled: probing one step up");
  }
  last_limit_ = before;
  last_throughput_ = throughput;
  return limit_ != before;
}

}  // namespace medeval
