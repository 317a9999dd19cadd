// `medeval worker`: serve one model for a coordinator, from any machine: an
// API (--base-url), or a local model server it starts and supervises
// (--serve "vllm serve ... --port {port}").
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "cli/batch_flags.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/security_flags.h"
#include "cli/signals.h"
#include "common/log.h"
#include "common/model_config.h"
#include "common/ops_server.h"
#include "common/url.h"
#include "local/model_runs.h"
#include "local/run_job.h"
#include "worker/api_key.h"
#include "worker/managed_worker.h"
#include "worker/worker_metrics.h"

namespace medeval::cli {

Command AddWorkerCommand(CLI::App& app) {
  struct Flags {
    ClientSecurityFlags security;
    EndpointFlags endpoint;
    std::string config;
    std::string name;
    std::string served_model;
    std::string serve;
    double serve_timeout_s = 1800;
    int serve_port = 0;
    std::string gpus;
    ConcurrencyFlags concurrency;
    int prefetch = -1;
    bool adaptive = false;
    double drain_grace_s = 60;
    std::string metrics_listen;
    BatchFlags batch;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "worker", "Answer a coordinator's questions with one model (connects out to it)");
  f->security.Add(sub);
  f->batch.state_dir = ".medeval-batches";
  f->batch.Add(sub, /*state_dir_flag=*/true);
  f->endpoint.Add(sub);
  sub->add_option("--config", f->config,
                  "Models file: take the endpoint or serve command, concurrency and key of "
                  "--model from it");
  sub->add_option("--serve", f->serve,
                  "Start and supervise this model server (\"{port}\" is replaced by a free "
                  "port), e.g. \"vllm serve /models/qwen --port {port}\"");
  sub->add_option("--serve-startup-timeout", f->serve_timeout_s,
                  "Seconds the server may take to load before it counts as failed")
      ->capture_default_str();
  sub->add_option("--serve-port", f->serve_port, "Port for the served model (default: a free one)");
  sub->add_option("--gpus", f->gpus, "CUDA_VISIBLE_DEVICES for the served model, e.g. 0,1,2,3");
  sub->add_option("--name", f->name, "Worker name, unique per coordinator (default: host-pid)");
  sub->add_option("--served-model-name", f->served_model,
                  "Model name to send to the server, if it differs from --model");
  f->concurrency.Add(sub, "to the model");
  sub->add_option("--prefetch", f->prefetch,
                  "Questions queued here beyond those in flight (default: concurrency/4)");
  sub->add_flag("--adaptive-concurrency", f->adaptive,
                "Halve the requests in flight on a 429 and raise them again while none come");
  sub->add_option("--drain-grace", f->drain_grace_s,
                  "On SIGTERM, seconds to let questions in flight finish")
      ->capture_default_str();
  sub->add_option("--metrics-listen", f->metrics_listen,
                  "HOST:PORT for Prometheus /metrics and the /healthz and /readyz probes");
  return {sub, [f]() -> int {
            auto fail = [](absl::Status st) {
              std::cerr << "medeval worker: " << st.message() << "\n";
              return kExitBadInput;
            };
            if (f->security.coordinator.empty()) {
              return fail(absl::InvalidArgumentError("--coordinator HOST:PORT is required"));
            }
            auto security = f->security.Resolve();
            if (!security.ok()) return fail(security.status());
            WorkerOptions o;
            std::optional<ServeOptions> serve;
            o.coordinator = f->security.coordinator;
            o.security = *security;
            o.name = f->name;
            o.prefetch = f->prefetch;
            bool config_batch = false;  // `batch: true` in the models file
            if (!f->config.empty()) {
              if (f->endpoint.model.empty()) {
                return fail(absl::InvalidArgumentError("--config needs --model NAME to pick one"));
              }
              auto config = LoadModelConfig(f->config, DefaultRequestParams());
              if (!config.ok()) return fail(config.status());
              const ModelEntry* e = config->Find(f->endpoint.model);
              if (e == nullptr) {
                return fail(absl::InvalidArgumentError("--model " + f->endpoint.model +
                                                       " is not in " + f->config));
              }
              auto m =
                  ModelRunFromEntry(*config, *e, absl::Milliseconds(f->endpoint.retry_base_ms));
              if (!m.ok()) return fail(m.status());
              o.model = m->model;
              o.backend = m->backend;
              f->endpoint.ApplyTiming(&o.backend);
              SetConcurrency(m->concurrency, m->max_concurrency, &o);
              o.adaptive_concurrency = m->adaptive_concurrency;
              config_batch = m->batch.enabled;
              serve = m->serve;
            } else if (!f->serve.empty()) {
              if (f->endpoint.model.empty()) {
                return fail(absl::InvalidArgumentError("--serve needs --model NAME"));
              }
              if (!f->endpoint.base_url.empty()) {
                return fail(absl::InvalidArgumentError("give --serve or --base-url, not both"));
              }
              auto key = ResolveApiKey(f->endpoint.api_key_env, f->endpoint.api_key_file, false);
              if (!key.ok()) return fail(key.status());
              ServeOptions s;
              s.command = f->serve;
              s.port = f->serve_port;
              s.startup_timeout = absl::Seconds(f->serve_timeout_s);
              if (!f->gpus.empty()) s.env["CUDA_VISIBLE_DEVICES"] = f->gpus;
              serve = s;
              o.model = f->endpoint.model;
              o.backend.api_key = *key;
              f->endpoint.ApplyTiming(&o.backend);
            } else {
              absl::Status st = f->endpoint.Resolve();
              auto backend = st.ok() ? f->endpoint.Backend() : absl::StatusOr<BackendConfig>(st);
              if (!backend.ok()) return fail(backend.status());
              o.model = f->endpoint.model;
              o.backend = *backend;
            }
            if (f->config.empty()) {
              SetConcurrency(f->concurrency.Value(), f->concurrency.max_concurrency, &o);
              o.adaptive_concurrency = f->adaptive;
            }
            if (!f->served_model.empty()) o.backend.served_model = f->served_model;
            {
              absl::Status side = f->endpoint.ApplyWorkerSide(&o.backend);
              if (!side.ok()) return fail(side);
            }
            o.batch = f->batch.Settings();
            o.batch.enabled = o.batch.enabled || config_batch;
            if (o.batch.enabled) {
              // Every question a batch can take is held at once.
              o.concurrency = static_cast<int>(std::min<int64_t>(o.batch.max_lines, 1 << 20));
              o.auto_concurrency = false;
            }
            auto metrics = std::make_shared<WorkerMetrics>(o.model);
            o.on_attempt_done = [metrics](const AttemptReport& r) { metrics->OnAttempt(r); };
            auto worker = std::make_shared<ManagedWorker>(o, serve);
            std::unique_ptr<OpsServer> ops;
            if (!f->metrics_listen.empty()) {
              OpsServer::Options oo;
              oo.listen = f->metrics_listen;
              oo.collectables = {metrics->registry(), std::make_shared<WorkerStateMetrics>(
                                                          [worker] { return worker->Snapshot(); })};
              oo.live = [worker] { return worker->Live(); };
              oo.ready = [worker] { return worker->Ready(); };
              auto started = OpsServer::Start(std::move(oo));
              if (!started.ok()) return fail(started.status());
              ops = std::move(*started);
              MEDEVAL_LOG(INFO) << "metrics on port " << ops->port();
            }
            absl::Status st = worker->Start();
            if (!st.ok()) return fail(st);
            const absl::Duration grace = absl::Seconds(f->drain_grace_s);
            WatchTerminationSignals([worker, grace](int sig) {
              MEDEVAL_LOG(INFO) << "signal " << sig << ": draining";
              std::thread([worker, grace] { worker->Drain(grace); }).detach();
            });
            st = worker->Wait();
            worker->Stop();
            if (!st.ok()) {
              std::cerr << "medeval worker: " << st.message() << "\n";
              return kExitFailed;
            }
            return kExitOk;
          }};
}

}  // namespace medeval::cli
