// The models file of `medeval run --config`, `submit --config` and
// `worker --config`: a list of models, each with its endpoint or the command
// that serves it, workers, concurrency, rate limits and request settings.
//
//   defaults:                 # merged into every model (optional)
//     workers: 2
//     request: {temperature: 0}
//   models:
//     - name: qwen2.5-72b
//       serve: {command: "vllm serve /models/qwen --port {port}", gpus: "0,1,2,3"}
//     - name: gpt-4o
//       base_url: https://api.openai.com/v1
//       api_key_env: OPENAI_API_KEY
//       limits: {rpm: 500, tpm: 300000}
//       concurrency: 32           # or auto (the default), with max_concurrency: 256
//       request: {max_tokens: 4096, extra_body: {seed: 1}, headers: {X-Team: eval}}
//       header_env: {X-Api-Key: GATEWAY_KEY}   # value from the environment
//
// Unknown keys and wrong types are errors that name the file and line.
//
// Thread-safety: pure functions; the result is a value.
#ifndef MEDEVAL_COMMON_MODEL_CONFIG_H_
#define MEDEVAL_COMMON_MODEL_CONFIG_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/medeval.pb.h"

namespace medeval {

// `concurrency: auto` / `--concurrency auto`: the coordinator finds the
// requests in flight (coordinator/concurrency_controller.h), up to
// max_concurrency per worker.
inline constexpr int kAutoConcurrency = 0;
inline constexpr int kDefaultMaxConcurrency = 256;

// Reads a --concurrency value: "auto" or a number from 1 to 4096.
absl::StatusOr<int> ParseConcurrency(const std::string& value);

struct ServeConfig {
  std::string command;  // "{port}" is replaced by the port
  double startup_timeout_s = 1800;
  double stop_grace_s = 30;
  std::string gpus;  // CUDA_VISIBLE_DEVICES for the server
  int port = 0;      // 0: a free one
};

struct ModelEntry {
  std::string name;
  std::string served_model_name;  // sent in requests when the server knows the model otherwise
  std::string base_url;
  std::string api_key_env;
  std::string api_key_file;
  bool has_serve = false;
  ServeConfig serve;
  int workers = 2;
  int concurrency = kAutoConcurrency;  // requests in flight per worker, or auto
  int max_concurrency = kDefaultMaxConcurrency;  // per worker, with auto
  bool adaptive_concurrency = false;
  bool batch = false;  // through the provider's Batch API
  v1::ModelLimits limits;
  // Per million tokens; batch_discount 0.5 unless set.
  v1::ModelPrice price = [] {
    v1::ModelPrice p;
    p.set_batch_discount(0.5);
    return p;
  }();
  v1::RequestParams params;  // MedBench defaults unless set
  // Headers only the worker holds, never part of the run: credential
  // headers from request.headers, and header_env (name -> variable).
  std::map<std::string, std::string> worker_headers;
  std::map<std::string, std::string> header_env;
  int line = 0;  // where the entry starts
};

struct ModelConfig {
  std::string path;
  std::vector<ModelEntry> models;
  const ModelEntry* Find(const std::string& name) const;
};

// Reads and checks the file. `base` gives the request defaults (MedBench's).
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path, const v1::RequestParams& base);
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& text, const std::string& path,
                                             const v1::RequestParams& base);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_MODEL_CONFIG_H_
