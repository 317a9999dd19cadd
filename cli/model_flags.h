// Flags shared by the commands that talk to a model (run, demo, worker):
// endpoint, key, request settings, with the environment fallbacks the
// existing MedBench script uses (MODEL_NAME, API_URL, API_TOKEN) and the
// OpenAI ones (OPENAI_BASE_URL, OPENAI_API_KEY).
#ifndef MEDEVAL_CLI_MODEL_FLAGS_H_
#define MEDEVAL_CLI_MODEL_FLAGS_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "proto/medeval.pb.h"
#include "worker/chat_backend.h"

namespace medeval::cli {

struct EndpointFlags {
  std::string model;
  std::string base_url;
  std::string api_key_env;
  std::string api_key_file;
  std::string api_key_cli;  // refused: a key on the command line is seen by every user
  double retry_base_ms = 1000;
  std::vector<std::string> header_env;  // "Name: VARIABLE"
  size_t max_response_bytes = BackendConfig::kDefaultMaxResponseBytes;
  double max_retry_after_s = 600;
  double probe_max_s = 30;
  std::vector<CLI::Option*> options;  // those that conflict with --config
  void Add(CLI::App* app);
  // Retry back-off, Retry-After cap and endpoint probing into `b` (also for
  // models from a --config file).
  void ApplyTiming(BackendConfig* b) const;
  // Applies the environment fallbacks; kInvalidArgument says what is missing.
  absl::Status Resolve();
  absl::StatusOr<BackendConfig> Backend() const;
  // The worker-side settings every backend gets, --config or not: the
  // --header-env headers (appended) and --max-response-bytes.
  absl::Status ApplyWorkerSide(BackendConfig* backend) const;
};

struct RequestFlags {
  std::optional<std::string> system_prompt;
  bool no_system_prompt = false;
  double temperature = 0;
  std::optional<int> max_tokens;
  std::optional<double> top_p;
  double timeout_s = 600;
  int max_attempts = 6;
  std::string extra_body;            // a JSON object
  std::vector<std::string> headers;  // "Name: value"
  double rpm = 0;
  double tpm = 0;
  double price_input = 0;   // per million tokens
  double price_output = 0;  // per million tokens
  double batch_discount = 0.5;
  void Add(CLI::App* app);
  // kInvalidArgument for a bad --extra-body or --header. Credential headers
  // (see common/http_headers.h) are not in the params: they are the
  // workers', from WorkerHeaders.
  absl::StatusOr<v1::RequestParams> Params() const;
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> WorkerHeaders() const;
  v1::ModelLimits Limits() const;
  v1::ModelPrice Price() const;
  // Options that only make sense without --config (set: a conflict).
  std::vector<CLI::Option*> options;
};

// --concurrency (auto, the default, or a number) and --max-concurrency.
struct ConcurrencyFlags {
  std::string concurrency = "auto";
  int max_concurrency = kDefaultMaxConcurrency;
  // Options that only make sense without --config (set: a conflict).
  std::vector<CLI::Option*> options;
  void Add(CLI::App* app, const char* per);
  // kAutoConcurrency or the fixed number (validated by Add's check).
  int Value() const;
};

// --pdf-max-pages and --pdf-dpi (VLM track) into `pdf`.
void AddPdfFlags(CLI::App* app, v1::PdfOptions* pdf);

bool StderrIsTerminal();

// The first of `options` given on the command line, or null.
CLI::Option* FirstGiven(const std::vector<CLI::Option*>& options);

}  // namespace medeval::cli

#endif  // MEDEVAL_CLI_MODEL_FLAGS_H_
