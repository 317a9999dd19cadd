#include "local/model_runs.h"

#include "absl/strings/str_cat.h"
#include "common/url.h"
#include "worker/api_key.h"

namespace medeval {

absl::StatusOr<ModelRun> ModelRunFromEntry(const ModelConfig& config, const ModelEntry& e,
                                           absl::Duration retry_base) {
  auto where = [&](const std::string& msg) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.path, ":", e.line, ": model '", e.name, "': ", msg));
  };
  ModelRun m;
  m.model = e.name;
  m.params = e.params;
  m.limits = e.limits;
  m.price = e.price;
  m.batch.enabled = e.batch;
  m.workers = e.workers;
  m.concurrency = e.concurrency;
  m.max_concurrency = e.max_concurrency;
  m.adaptive_concurrency = e.adaptive_concurrency;
  m.backend.served_model = e.served_model_name;
  m.backend.retry_base = retry_base;
  if (e.has_serve) {
    ServeOptions s;
    s.command = e.serve.command;
    s.port = e.serve.port;
    s.startup_timeout = absl::Seconds(e.serve.startup_timeout_s);
    s.stop_grace = absl::Seconds(e.serve.stop_grace_s);
    if (!e.serve.gpus.empty()) s.env["CUDA_VISIBLE_DEVICES"] = e.serve.gpus;
    m.serve = std::move(s);
  } else if (e.base_url.empty()) {
    return where("needs 'base_url' (an API) or 'serve' (a local server to start)");
  } else {
    auto ep = ParseEndpoint(e.base_url);
    if (!ep.ok()) return where(std::string(ep.status().message()));
    m.backend.endpoint = *ep;
  }
  auto key = ResolveApiKey(e.api_key_env, e.api_key_file, /*fallbacks=*/false);
  if (!key.ok()) return where(std::string(key.status().message()));
  m.backend.api_key = *key;
  auto headers = ResolveWorkerHeaders(e.worker_headers, e.header_env);
  if (!headers.ok()) return where(std::string(headers.status().message()));
  m.backend.headers = std::move(*headers);
  return m;
}

absl::StatusOr<std::vector<ModelRun>> ModelRunsFromConfig(const ModelConfig& config,
                                                          absl::Duration retry_base) {
  std::vector<ModelRun> out;
  for (const ModelEntry& e : config.models) {
    auto m = ModelRunFromEntry(config, e, retry_base);
    if (!m.ok()) return m.status();
    out.push_back(std::move(*m));
  }
  return out;
}

}  // namespace medeval
