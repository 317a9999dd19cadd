// A hosted API's request-rate limit: a token bucket refilled at `rps` tokens
// a second that holds one second's worth (at least one), so a client gets a
// burst of about `rps` requests and then `rps` a second; a request finding
// the bucket empty is to be answered 429 with the wait until the next token.
// A rate of 0 or less admits everyone.
//
// Thread-safety: thread-safe (one mutex). The caller passes the time, so
// tests drive it with a fake clock.
#ifndef MEDEVAL_SIM_RATE_LIMITER_H_
#define MEDEVAL_SIM_RATE_LIMITER_H_

#include <algorithm>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace medeval::sim {

class RateLimiter {
 public:
  explicit RateLimiter(double rps) : rps_(rps), tokens_(Burst(rps)) {}

  // Takes a token for a request arriving at `now` and returns true, or
  // returns false and sets `*retry_after` to the wait until one is there.
  bool Admit(absl::Time now, absl::Duration* retry_after) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (rps_ <= 0) {
      ++admitted_;
      return true;
    }
    if (last_ != absl::InfinitePast() && now > last_) {
      tokens_ = std::min(Burst(rps_), tokens_ + absl::ToDoubleSeconds(now - last_) * rps_);
    }
    if (now > last_ || last_ == absl::InfinitePast()) last_ = now;
    if (tokens_ >= 1) {
      tokens_ -= 1;
      ++admitted_;
      return true;
    }
    *retry_after = absl::Seconds((1 - tokens_) / rps_);
    ++limited_;
    return false;
  }

  // A new rate, starting with a full bucket.
  void set_rps(double rps) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    rps_ = rps;
    tokens_ = Burst(rps);
    last_ = absl::InfinitePast();
  }

  double rps() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return rps_;
  }
  uint64_t admitted() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return admitted_;
  }
  uint64_t limited() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return limited_;
  }
  void ResetCounts() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    admitted_ = limited_ = 0;
  }

 private:
  static double Burst(double rps) { return rps > 1 ? rps : 1; }

  mutable absl::Mutex mu_;
  double rps_ ABSL_GUARDED_BY(mu_);
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t admitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t limited_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace medeval::sim

#endif  // MEDEVAL_SIM_RATE_LIMITER_H_
