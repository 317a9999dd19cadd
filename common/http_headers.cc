#include "common/http_headers.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace medeval {

bool IsCredentialHeader(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  for (absl::string_view part : {"key", "token", "secret", "auth", "cookie", "password"}) {
    if (absl::StrContains(n, part)) return true;
  }
  return false;
}

absl::Status CheckHeader(absl::string_view name, absl::string_view value, absl::string_view what) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": a header needs a name"));
  }
  for (char c : name) {
    // RFC 9110 token characters.
    if (!(absl::ascii_isalnum(c) || absl::StrContains("!#$%&'*+-.^_`|~", c))) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": header name '", name, "' has a character not allowed in names"));
    }
  }
  if (absl::StrContains(value, '\r') || absl::StrContains(value, '\n') ||
      absl::StrContains(value, '\0')) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the value of header '", name, "' holds a line break"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<std::string, std::string>> ParseHeaderLine(absl::string_view line,
                                                                    absl::string_view what) {
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) {
    // Never echo the line: it may be "Authorization Bearer sk-...".
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must look like \"Name: value\" (no colon found)"));
  }
  std::string name(absl::StripAsciiWhitespace(line.substr(0, colon)));
  std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  absl::Status st = CheckHeader(name, value, what);
  if (!st.ok()) return st;
  return std::make_pair(std::move(name), std::move(value));
}

std::string ScrubCredentials(std::string message, absl::string_view api_key,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
  if (api_key.size() >= 4) message = absl::StrReplaceAll(message, {{api_key, "***"}});
  for (const auto& [name, value] : headers) {
    if (value.size() >= 4 && IsCredentialHeader(name)) {
      message = absl::StrReplaceAll(message, {{value, "***"}});
    }
  }
  return message;
}

}  // namespace medeval
