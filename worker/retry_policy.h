// What to do after an attempt to ask the model failed: retry (when, how
// long to wait), give up on the question, or stop the worker because the
// backend itself is unusable.
//
//   transient  429, 408, 5xx, timeouts, connection errors, a 200 whose body
//              does not parse, is too large or holds no answer (empty
//              content)  -> retry with exponential backoff and jitter,
//              honouring Retry-After, up to max_attempts
//   question   400, 413, 422 and other 4xx -> this question fails now, with
//              the server's message (no retry would change the answer)
//   backend    401, 403 (credentials), 404, 405 (wrong URL or model) -> the
//              worker stops taking work; retrying every question would only
//              burn through the suite
//
// Thread-safety: RetryPolicy is immutable after construction; the free
// functions are pure.
#ifndef MEDEVAL_WORKER_RETRY_POLICY_H_
#define MEDEVAL_WORKER_RETRY_POLICY_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace medeval {

enum class FailureKind { kTransient, kQuestion, kBackend };

FailureKind ClassifyHttpStatus(int status);
// libcurl error codes: most are transient; a malformed URL or an unsupported
// protocol is a backend (configuration) failure.
FailureKind ClassifyTransportError(int curl_code);

// Retry-After as seconds ("120") or an HTTP date; nullopt if absent or
// unreadable. A date in the past gives zero.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

class RetryPolicy {
 public:
  struct Options {
    int max_attempts = 6;
    absl::Duration base = absl::Seconds(1);  // first backoff (before jitter)
    absl::Duration cap = absl::Seconds(60);  // longest backoff
    absl::Duration max_retry_after = absl::Minutes(10);
  };
  explicit RetryPolicy(Options options) : options_(options) {}

  // After failed attempt number `attempt` (1-based) of kind `kind`: the delay
  // before the next attempt, or nullopt to stop. `random01` in [0, 1) drives
  // the jitter. A Retry-After longer than the back-off replaces it.
  std::optional<absl::Duration> NextDelay(int attempt, FailureKind kind,
                                          std::optional<absl::Duration> retry_after,
                                          double random01) const;

  const Options& options() const { return options_; }

 private:
  Options options_;
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_RETRY_POLICY_H_
