#include "cli/model_flags.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "client/run_job.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/url.h"

namespace medeval::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

absl::StatusOr<std::string> ResolveApiKey(const std::string& api_key_env,
                                          const std::string& api_key_file) {
  if (!api_key_file.empty()) {
    auto data = ReadFile(api_key_file);
    if (!data.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--api-key-file: ", data.status().message()));
    }
    std::string key(absl::StripAsciiWhitespace(*data));
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--api-key-file ", api_key_file, " is empty"));
    }
    return key;
  }
  if (!api_key_env.empty()) {
    std::string v = Env(api_key_env.c_str());
    if (v.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--api-key-env ", api_key_env, ": the variable is not set"));
    }
    return v;
  }
  for (const char* name : {"API_TOKEN", "OPENAI_API_KEY"}) {
    std::string v = Env(name);
    if (!v.empty()) return v;
  }
  return std::string();
}

void EndpointFlags::Add(CLI::App* app) {
  app->add_option("--model", model, "Model name sent in requests (env MODEL_NAME)");
  app->add_option("--base-url", base_url,
                  "OpenAI-compatible base URL, e.g. http://host:8000/v1, or the full "
                  ".../chat/completions URL (env API_URL, OPENAI_BASE_URL)");
  app->add_option("--api-key-env", api_key_env,
                  "Environment variable holding the API key (default: API_TOKEN, then "
                  "OPENAI_API_KEY)");
  app->add_option("--api-key-file", api_key_file, "File holding the API key");
  app->add_option("--retry-base-ms", retry_base_ms,
                  "First retry back-off in milliseconds (doubles each attempt)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

absl::Status EndpointFlags::Resolve() {
  if (model.empty()) model = Env("MODEL_NAME");
  if (base_url.empty()) base_url = Env("API_URL");
  if (base_url.empty()) base_url = Env("OPENAI_BASE_URL");
  if (model.empty()) {
    return absl::InvalidArgumentError("no model: pass --model NAME or set MODEL_NAME");
  }
  if (base_url.empty()) {
    return absl::InvalidArgumentError(
        "no endpoint: pass --base-url URL or set API_URL (or OPENAI_BASE_URL)");
  }
  return absl::OkStatus();
}

absl::StatusOr<BackendConfig> EndpointFlags::Backend() const {
  auto ep = ParseEndpoint(base_url);
  if (!ep.ok()) return ep.status();
  auto key = ResolveApiKey(api_key_env, api_key_file);
  if (!key.ok()) return key.status();
  BackendConfig b;
  b.endpoint = *ep;
  b.api_key = *key;
  b.retry_base = absl::Milliseconds(retry_base_ms);
  return b;
}

void RequestFlags::Add(CLI::App* app) {
  app->add_option("--system-prompt", system_prompt,
                  "System prompt (default: \"You are a helpful assistant.\")");
  app->add_flag("--no-system-prompt", no_system_prompt, "Send no system message");
  app->add_option("--temperature", temperature, "Sampling temperature, sent in every request")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  app->add_option("--max-tokens", max_tokens, "max_tokens (default: not sent)")
      ->check(CLI::PositiveNumber);
  app->add_option("--top-p", top_p, "top_p (default: not sent)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--timeout", timeout_s, "Seconds to wait for one answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--max-attempts", max_attempts, "Attempts per question before it fails")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
}

v1::RequestParams RequestFlags::Params() const {
  v1::RequestParams p = DefaultRequestParams();
  if (no_system_prompt) {
    p.set_system_prompt("");
  } else if (system_prompt.has_value()) {
    p.set_system_prompt(*system_prompt);
  }
  p.set_temperature(temperature);
  if (max_tokens.has_value()) p.set_max_tokens(*max_tokens);
  if (top_p.has_value()) p.set_top_p(*top_p);
  p.set_timeout_s(timeout_s);
  p.set_max_attempts(max_attempts);
  return p;
}

}  // namespace medeval::cli
