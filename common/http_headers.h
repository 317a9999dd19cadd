// Extra HTTP headers sent to model servers: parsing "Name: value", and
// telling credentials apart. A credential header (Authorization, api-key,
// x-api-key, any name containing "key", "token", "secret" or "auth", or a
// cookie) stays with the worker that sends it: it is never part of a run's
// settings, so it never reaches the coordinator's saved spec, manifest.json,
// records.jsonl or a log line.
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_COMMON_HTTP_HEADERS_H_
#define MEDEVAL_COMMON_HTTP_HEADERS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval {

// Case-insensitive.
bool IsCredentialHeader(absl::string_view name);

// "Name: value" -> (name, value), both trimmed. kInvalidArgument (naming
// `what`, e.g. "--header") for a missing colon, an empty or malformed name,
// or a CR/LF in the value (header injection).
absl::StatusOr<std::pair<std::string, std::string>> ParseHeaderLine(absl::string_view line,
                                                                    absl::string_view what);

// The same checks for a name and a value given apart (models file).
absl::Status CheckHeader(absl::string_view name, absl::string_view value, absl::string_view what);

// `message` with the API key and the values of credential headers (4
// characters or more) replaced by "***": for every message that may reach a
// log or a user (the online and the Batch API paths alike).
std::string ScrubCredentials(std::string message, absl::string_view api_key,
                             const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_HTTP_HEADERS_H_
