#include "worker/api_key.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"

namespace medeval {

absl::StatusOr<std::string> ResolveApiKey(const std::string& env, const std::string& file,
                                          bool fallbacks) {
  if (!file.empty()) {
    auto data = ReadFile(file);
    if (!data.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("API key file: ", data.status().message()));
    }
    std::string key(absl::StripAsciiWhitespace(*data));
    if (key.empty())
      return absl::InvalidArgumentError(absl::StrCat("API key file ", file, " is empty"));
    return key;
  }
  if (!env.empty()) {
    const char* v = std::getenv(env.c_str());
    if (v == nullptr || *v == '\0') {
      return absl::InvalidArgumentError(absl::StrCat("the API key variable ", env, " is not set"));
    }
    return std::string(v);
  }
  if (fallbacks) {
    for (const char* name : {"API_TOKEN", "OPENAI_API_KEY"}) {
      const char* v = std::getenv(name);
      if (v != nullptr && *v != '\0') return std::string(v);
    }
  }
  return std::string();
}

}  // namespace medeval
