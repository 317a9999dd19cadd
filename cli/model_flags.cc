#include "cli/model_flags.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/run_spec.h"
#include "common/file_util.h"
#include "common/http_headers.h"
#include "common/pdf_render.h"
#include "common/url.h"
#include "worker/api_key.h"

namespace medeval::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

void AddPdfFlags(CLI::App* app, v1::PdfOptions* pdf) {
  const PdfRenderOptions defaults;
  app->add_option_function<int>(
         "--pdf-max-pages", [pdf](int n) { pdf->set_max_pages(n); },
         absl::StrCat("VLM: pages of each PDF report sent as images (default ", defaults.max_pages,
                      ")"))
      ->check(CLI::Range(1, 64));
  app->add_option_function<int>(
         "--pdf-dpi", [pdf](int n) { pdf->set_dpi(n); },
         absl::StrCat("VLM: resolution PDF pages are rendered at (default ", defaults.dpi, ")"))
      ->check(CLI::Range(36, 600));
}

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

CLI::Option* FirstGiven(const std::vector<CLI::Option*>& options) {
  for (CLI::Option* o : options) {
    if (o->count() > 0) return o;
  }
  return nullptr;
}

void EndpointFlags::Add(CLI::App* app) {
  options.push_back(
      app->add_option("--model", model, "Model name sent in requests (env MODEL_NAME)"));
  options.push_back(
      app->add_option("--base-url", base_url,
                      "OpenAI-compatible base URL, e.g. http://host:8000/v1, or the full "
                      ".../chat/completions URL (env API_URL, OPENAI_BASE_URL)"));
  options.push_back(
      app->add_option("--api-key-env", api_key_env,
                      "Environment variable holding the API key (default: API_TOKEN, then "
                      "OPENAI_API_KEY)"));
  options.push_back(app->add_option("--api-key-file", api_key_file, "File holding the API key"));
  options.push_back(
      app->add_option("--header-env", header_env,
                      "Header whose value is read from an environment variable, \"Name: VARIABLE\" "
                      "(repeatable; for credentials: the value is sent to the model server only)"));
  app->add_option("--max-response-bytes", max_response_bytes,
                  "Largest response body accepted, also once decompressed (default 16 MiB)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 34));
  // Accepted only to say what to use instead (hidden from --help).
  app->add_option("--api-key", api_key_cli, "")->group("");
  app->add_option("--retry-base-ms", retry_base_ms,
                  "First retry back-off in milliseconds (doubles each attempt)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--max-retry-after", max_retry_after_s,
                  "Longest Retry-After (seconds) honoured; a longer one is cut to this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--endpoint-probe-max", probe_max_s,
                  "While the endpoint is down it is probed after 1 s, doubling up to this many "
                  "seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void EndpointFlags::ApplyTiming(BackendConfig* b) const {
  b->retry_base = absl::Milliseconds(retry_base_ms);
  b->max_retry_after = absl::Seconds(max_retry_after_s);
  b->probe_max = absl::Seconds(probe_max_s);
  b->probe_min = std::min(b->probe_min, b->probe_max);
}

absl::Status EndpointFlags::Resolve() {
  if (!api_key_cli.empty()) {
    return absl::InvalidArgumentError(
        "--api-key is not taken: a key on the command line is visible to every user of this "
        "machine (ps) and stays in the shell history. Put it in a variable and pass "
        "--api-key-env VAR (API_TOKEN and OPENAI_API_KEY are read by default), or use "
        "--api-key-file FILE");
  }
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
  auto key = ResolveApiKey(api_key_env, api_key_file, /*fallbacks=*/true);
  if (!key.ok()) return key.status();
  BackendConfig b;
  b.endpoint = *ep;
  b.api_key = *key;
  ApplyTiming(&b);
  return b;
}

absl::Status EndpointFlags::ApplyWorkerSide(BackendConfig* backend) const {
  std::map<std::string, std::string> from_env;
  for (const std::string& h : header_env) {
    auto parsed = ParseHeaderLine(h, "--header-env");
    if (!parsed.ok()) return parsed.status();
    from_env[parsed->first] = parsed->second;
  }
  auto headers = ResolveWorkerHeaders({}, from_env);
  if (!headers.ok()) return headers.status();
  backend->headers.insert(backend->headers.end(), headers->begin(), headers->end());
  backend->max_response_bytes = max_response_bytes;
  return absl::OkStatus();
}

void RequestFlags::Add(CLI::App* app) {
  options.push_back(app->add_option("--system-prompt", system_prompt,
                                    "System prompt (default: \"You are a helpful assistant.\")"));
  options.push_back(
      app->add_flag("--no-system-prompt", no_system_prompt, "Send no system message"));
  options.push_back(
      app->add_option("--temperature", temperature, "Sampling temperature, sent in every request")
          ->check(CLI::Range(0.0, 2.0))
          ->capture_default_str());
  options.push_back(app->add_option("--max-tokens", max_tokens, "max_tokens (default: not sent)")
                        ->check(CLI::PositiveNumber));
  options.push_back(
      app->add_option("--top-p", top_p, "top_p (default: not sent)")->check(CLI::Range(0.0, 1.0)));
  options.push_back(app->add_option("--timeout", timeout_s, "Seconds to wait for one answer")
                        ->check(CLI::PositiveNumber)
                        ->capture_default_str());
  options.push_back(
      app->add_option("--max-attempts", max_attempts, "Attempts per question before it fails")
          ->check(CLI::Range(1, 100))
          ->capture_default_str());
  options.push_back(app->add_option("--extra-body", extra_body,
                                    "JSON object merged into every request body, e.g. "
                                    "'{\"chat_template_kwargs\": {\"enable_thinking\": false}}'"));
  options.push_back(app->add_option(
      "--header", headers, "Extra HTTP header for every request, \"Name: value\" (repeatable)"));
  options.push_back(
      app->add_option("--rpm", rpm, "Requests per minute for this model, shared by all its workers")
          ->check(CLI::NonNegativeNumber));
  options.push_back(
      app->add_option("--tpm", tpm, "Tokens per minute for this model, shared by all its workers")
          ->check(CLI::NonNegativeNumber));
  options.push_back(app->add_option("--price-input", price_input,
                                    "Price per million input tokens (cost in manifest and summary)")
                        ->check(CLI::NonNegativeNumber));
  options.push_back(
      app->add_option("--price-output", price_output, "Price per million output tokens")
          ->check(CLI::NonNegativeNumber));
  options.push_back(app->add_option("--batch-discount", batch_discount,
                                    "Share of the price taken off answers from a Batch API")
                        ->check(CLI::Range(0.0, 1.0))
                        ->capture_default_str());
}

v1::ModelPrice RequestFlags::Price() const {
  v1::ModelPrice p;
  p.set_input_per_million(price_input);
  p.set_output_per_million(price_output);
  p.set_batch_discount(batch_discount);
  return p;
}

v1::ModelLimits RequestFlags::Limits() const {
  v1::ModelLimits l;
  l.set_rpm(rpm);
  l.set_tpm(tpm);
  return l;
}

absl::StatusOr<v1::RequestParams> RequestFlags::Params() const {
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
  if (!extra_body.empty()) {
    auto j = nlohmann::json::parse(extra_body, nullptr, false);
    if (!j.is_object()) {
      return absl::InvalidArgumentError("--extra-body must be a JSON object, e.g. '{\"seed\": 1}'");
    }
    p.set_extra_body_json(j.dump());
  }
  for (const std::string& h : headers) {
    auto parsed = ParseHeaderLine(h, "--header");
    if (!parsed.ok()) return parsed.status();
    if (IsCredentialHeader(parsed->first)) continue;  // the workers'
    (*p.mutable_extra_headers())[parsed->first] = parsed->second;
  }
  return p;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> RequestFlags::WorkerHeaders()
    const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& h : headers) {
    auto parsed = ParseHeaderLine(h, "--header");
    if (!parsed.ok()) return parsed.status();
    if (IsCredentialHeader(parsed->first)) out.push_back(std::move(*parsed));
  }
  return out;
}

void ConcurrencyFlags::Add(CLI::App* app, const char* per) {
  options.push_back(
      app->add_option("--concurrency", concurrency,
                      absl::StrCat("Requests in flight ", per,
                                   ": auto (found from the endpoint's throughput and latency, "
                                   "shared by the model's workers) or a fixed number"))
          ->check(CLI::Validator(
              [](std::string& v) {
                auto x = ParseConcurrency(v);
                return x.ok() ? std::string() : std::string(x.status().message());
              },
              "auto|1..4096"))
          ->capture_default_str());
  options.push_back(app->add_option("--max-concurrency", max_concurrency,
                                    absl::StrCat("With --concurrency auto: the most requests in "
                                                 "flight ",
                                                 per))
                        ->check(CLI::Range(1, 4096))
                        ->capture_default_str());
}

int ConcurrencyFlags::Value() const {
  auto x = ParseConcurrency(concurrency);
  return x.ok() ? *x : kAutoConcurrency;
}

}  // namespace medeval::cli
