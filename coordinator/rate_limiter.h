// A token bucket: `rate` tokens per second, holding at most `capacity`.
// Tokens may be taken beyond what is there (the bucket goes negative) to
// settle a cost known only afterwards, such as the tokens an answer used.
//
// Not thread-safe: the scheduler's mutex guards it.
#ifndef MEDEVAL_COORDINATOR_RATE_LIMITER_H_
#define MEDEVAL_COORDINATOR_RATE_LIMITER_H_

#include <algorithm>

#include "absl/time/time.h"

namespace medeval {

class TokenBucket {
 public:
  TokenBucket() = default;
  // Starts full.
  TokenBucket(double rate_per_s, double capacity, absl::Time now)
      : rate_(rate_per_s), capacity_(capacity), tokens_(capacity), last_(now) {}

  bool enabled() const { return rate_ > 0; }
  void Refill(absl::Time now) {
    if (now > last_) {
      tokens_ = std::min(capacity_, tokens_ + rate_ * absl::ToDoubleSeconds(now - last_));
      last_ = now;
    }
  }
  bool CanTake(double n) const { return !enabled() || tokens_ >= n; }
  void Take(double n) {
    if (enabled()) tokens_ -= n;
  }
  double tokens() const { return tokens_; }
  double rate() const { return rate_; }

 private:
  double rate_ = 0;
  double capacity_ = 0;
  double tokens_ = 0;
  absl::Time last_;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_RATE_LIMITER_H_
