#include "worker/retry_policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace medeval {

FailureKind ClassifyHttpStatus(int status) {
  if (status == 408 || status == 409 || status == 425 || status == 429 || status >= 500) {
    return FailureKind::kTransient;
  }
  if (status == 401 || status == 403 || status == 404 || status == 405) {
    return FailureKind::kBackend;
  }
  if (status >= 400) return FailureKind::kQuestion;
  // 1xx/3xx that libcurl did not resolve, or a 2xx treated as a failure by the
  // caller (unparseable body): worth another try.
  return FailureKind::kTransient;
}

FailureKind ClassifyTransportError(int curl_code) {
  switch (curl_code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return FailureKind::kBackend;
    default:
      return FailureKind::kTransient;
  }
}

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  double secs = 0;
  if (absl::SimpleAtod(value, &secs)) {
    if (!(secs >= 0) || std::isinf(secs)) return std::nullopt;
    return absl::Seconds(secs);
  }
  // HTTP-date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  absl::Time when;
  std::string err;
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(value), absl::UTCTimeZone(), &when,
                      &err)) {
    return std::max(absl::ZeroDuration(), when - now);
  }
  return std::nullopt;
}

std::optional<absl::Duration> RetryPolicy::NextDelay(int attempt, FailureKind kind,
                                                     std::optional<absl::Duration> retry_after,
                                                     double random01) const {
  if (kind != FailureKind::kTransient) return std::nullopt;
  if (attempt >= options_.max_attempts) return std::nullopt;
  // Exponential backoff with "equal jitter": half fixed, half random, so
  // retries of many questions spread out but never hammer immediately.
  double exp = std::pow(2.0, std::max(0, attempt - 1));
  absl::Duration d = std::min(options_.base * exp, options_.cap);
  absl::Duration backoff = d / 2 + (d / 2) * random01;
  // Retry-After is the least to wait ("0" does not mean hammer the server).
  if (retry_after.has_value()) {
    return std::max(backoff, std::min(*retry_after, options_.max_retry_after));
  }
  return backoff;
}

}  // namespace medeval
