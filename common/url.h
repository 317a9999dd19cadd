// Endpoint URLs of OpenAI-compatible servers.
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_COMMON_URL_H_
#define MEDEVAL_COMMON_URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval {

struct Endpoint {
  std::string base;              // "http://host:8000/v1", no trailing slash
  std::string chat_completions;  // base + "/chat/completions"
  std::string models;            // base + "/models"
};

// Accepts a base ("http://host:8000/v1") or the full ".../chat/completions"
// URL. Only http and https; a host is required. kInvalidArgument otherwise.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view url);

// The URL safe to print or record: user:password@ removed and the values of
// query parameters that look like credentials (key, token, secret, sig)
// replaced by "REDACTED".
std::string RedactUrl(absl::string_view url);

// OK when `value` can be sent as an HTTP header value: no line break or
// other control character (a second line would be sent as another header).
// `what` names the value in the error (never the value itself: it may be a
// key).
absl::Status CheckHeaderValue(absl::string_view what, absl::string_view value);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_URL_H_
