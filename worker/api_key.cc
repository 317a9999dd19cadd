#include "worker/api_key.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/http_headers.h"
#include "common/url.h"

namespace medeval {

absl::StatusOr<std::string> ResolveApiKey(const std::string& env, const std::string& file,
                                          bool fallbacks) {
  if (!file.empty()) {
    auto data = ReadFile(file);
    if (!data.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("API key file: ", data.status().message()));
    }
    // The file's trailing newline (and surrounding spaces) is not part of
    // the key; a second line is an error, never another header.
    std::string key(absl::StripAsciiWhitespace(*data));
    if (key.empty())
      return absl::InvalidArgumentError(absl::StrCat("API key file ", file, " is empty"));
    absl::Status st = CheckHeaderValue(absl::StrCat("the API key in ", file), key);
    if (!st.ok()) return st;
    return key;
  }
  if (!env.empty()) {
    const char* v = std::getenv(env.c_str());
    if (v == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("the API key variable ", env, " is not set"));
    }
    if (*v == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("the API key variable ", env, " is set but empty"));
    }
    absl::Status st = CheckHeaderValue(absl::StrCat("the API key variable ", env), v);
    if (!st.ok()) return st;
    return std::string(v);
  }
  if (fallbacks) {
    for (const char* name : {"API_TOKEN", "OPENAI_API_KEY"}) {
      const char* v = std::getenv(name);
      if (v == nullptr || *v == '\0') continue;
      absl::Status st = CheckHeaderValue(absl::StrCat("the API key variable ", name), v);
      if (!st.ok()) return st;
      return std::string(v);
    }
  }
  return std::string();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ResolveWorkerHeaders(
    const std::map<std::string, std::string>& fixed,
    const std::map<std::string, std::string>& from_env) {
  std::vector<std::pair<std::string, std::string>> out(fixed.begin(), fixed.end());
  for (const auto& [name, var] : from_env) {
    const char* v = std::getenv(var.c_str());
    if (v == nullptr || *v == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("header ", name, ": the variable ", var, " is not set"));
    }
    std::string value(absl::StripAsciiWhitespace(v));
    absl::Status st = CheckHeader(name, value, absl::StrCat("header ", name, " (from ", var, ")"));
    if (!st.ok()) return st;
    out.emplace_back(name, std::move(value));
  }
  return out;
}

}  // namespace medeval
