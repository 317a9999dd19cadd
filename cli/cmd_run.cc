// `medeval run`: evaluate one model (flags) or several (--config models.yaml)
// on a MedBench suite, embedded on this machine (coordinator + local workers
// on loopback).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "absl/strings/str_split.h"
#include "cli/batch_flags.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/signals.h"
#include "common/log.h"
#include "common/model_config.h"
#include "local/batch_exit_prompt.h"
#include "local/model_runs.h"
#include "local/run_job.h"

namespace medeval::cli {

Command AddRunCommand(CLI::App& app) {
  struct Flags {
    std::string data;
    std::string config;
    std::string track;
    std::string datasets;
    std::string out = "results";
    int workers = 2;
    ConcurrencyFlags concurrency;
    bool adaptive = false;
    bool skip_invalid = false;
    v1::PdfOptions pdf;
    bool allow_incomplete = false;
    bool replace = false;
    bool no_probe = false;
    double concurrency_window_s = 5;
    double endpoint_down_timeout_s = 600;
    std::string progress = "auto";
    bool verbose = false;
    std::string metrics_listen;
    EndpointFlags endpoint;
    RequestFlags request;
    BatchFlags batch;
    std::vector<CLI::Option*> per_model;  // conflict with --config
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "run", "Evaluate models on a MedBench suite on this machine and write the upload files");
  sub->add_option("--data", f->data,
                  "Folder of the suite (<Dataset>.jsonl, or legacy "
                  "<Dataset>/<Dataset>_test.jsonl)")
      ->required();
  sub->add_option("--config", f->config,
                  "Models file (YAML): several models at once, each with its endpoint or serve "
                  "command, workers, limits and request settings");
  sub->add_option("--track", f->track, "v4-llm, v4-agent, v4-vlm or legacy-llm (default: detected)")
      ->check(CLI::IsMember({"v4-llm", "v4-agent", "v4-vlm", "legacy-llm"}));
  sub->add_option("--datasets", f->datasets, "Only these datasets (comma-separated)");
  sub->add_option("--out", f->out, "Output folder; results go to OUT/<model>/")
      ->capture_default_str();
  f->per_model.push_back(sub->add_option("--workers", f->workers, "Local workers")
                             ->check(CLI::Range(1, 256))
                             ->capture_default_str());
  f->concurrency.Add(sub, "per worker");
  f->per_model.insert(f->per_model.end(), f->concurrency.options.begin(),
                      f->concurrency.options.end());
  f->per_model.push_back(
      sub->add_flag("--adaptive-concurrency", f->adaptive,
                    "Halve the requests in flight on a 429 and raise them again while none come"));
  sub->add_flag("--skip-invalid", f->skip_invalid,
                "Leave out invalid input lines (listed in the manifest) instead of refusing");
  sub->add_flag("--allow-incomplete-zip", f->allow_incomplete,
                "Write the upload zip even when some questions failed");
  sub->add_flag("--replace", f->replace,
                "Replace a result of another run found in OUT/<model>/ (otherwise refused)");
  sub->add_flag("--no-probe", f->no_probe, "Do not check the endpoints before starting");
  sub->add_option("--concurrency-window", f->concurrency_window_s,
                  "With --concurrency auto: seconds of a model's answers judged before its "
                  "limit changes (longer: steadier, slower to find the knee)")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  sub->add_option("--endpoint-down-timeout", f->endpoint_down_timeout_s,
                  "Seconds to wait for a model endpoint that went down before stopping (exit 1, "
                  "answers saved; run the same command again to continue)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--progress", f->progress, "auto, bar or plain")
      ->check(CLI::IsMember({"auto", "bar", "plain"}))
      ->capture_default_str();
  sub->add_flag("-v,--verbose", f->verbose, "Log what the coordinator and workers do");
  sub->add_option("--metrics-listen", f->metrics_listen,
                  "HOST:PORT for Prometheus /metrics (runs, and requests per model) and probes");
  f->endpoint.Add(sub);
  f->request.Add(sub);
  AddPdfFlags(sub, &f->pdf);
  f->batch.Add(sub, /*state_dir_flag=*/false);

  return {
      sub, [f]() -> int {
        if (!f->verbose && std::getenv("MEDEVAL_LOG_LEVEL") == nullptr) {
          SetLogLevel(LogLevel::kWarning);
        }
        RunJobOptions o;
        if (!f->config.empty()) {
          std::vector<CLI::Option*> conflicts = f->per_model;
          conflicts.insert(conflicts.end(), f->endpoint.options.begin(), f->endpoint.options.end());
          conflicts.insert(conflicts.end(), f->request.options.begin(), f->request.options.end());
          if (CLI::Option* o = FirstGiven(conflicts)) {
            std::cerr << "medeval run: " << o->get_name()
                      << " is set per model in the --config file\n";
            return kExitBadInput;
          }
          auto config = LoadModelConfig(f->config, DefaultRequestParams());
          auto models = config.ok() ? ModelRunsFromConfig(
                                          *config, absl::Milliseconds(f->endpoint.retry_base_ms))
                                    : absl::StatusOr<std::vector<ModelRun>>(config.status());
          if (!models.ok()) {
            std::cerr << "medeval run: " << models.status().message() << "\n";
            return kExitBadInput;
          }
          o.models = std::move(*models);
          for (ModelRun& m : o.models) {
            f->endpoint.ApplyTiming(&m.backend);
            absl::Status st = f->endpoint.ApplyWorkerSide(&m.backend);
            if (!st.ok()) {
              std::cerr << "medeval run: " << st.message() << "\n";
              return kExitBadInput;
            }
            const bool on = m.batch.enabled || f->batch.batch;
            m.batch = f->batch.Settings();
            m.batch.enabled = on;
          }
        } else {
          absl::Status st = f->endpoint.Resolve();
          auto backend = st.ok() ? f->endpoint.Backend() : absl::StatusOr<BackendConfig>(st);
          auto params = f->request.Params();
          auto secret = f->request.WorkerHeaders();
          if (backend.ok()) {
            absl::Status side = f->endpoint.ApplyWorkerSide(&*backend);
            if (!side.ok()) backend = side;
          }
          if (!backend.ok() || !params.ok() || !secret.ok()) {
            std::cerr << "medeval run: "
                      << (!backend.ok()  ? backend.status()
                          : !params.ok() ? params.status()
                                         : secret.status())
                             .message()
                      << "\n";
            return kExitBadInput;
          }
          ModelRun m;
          m.model = f->endpoint.model;
          m.backend = *backend;
          // Credential headers travel with the workers, not the run.
          m.backend.headers.insert(m.backend.headers.end(), secret->begin(), secret->end());
          m.params = *params;
          m.limits = f->request.Limits();
          m.price = f->request.Price();
          m.batch = f->batch.Settings();
          m.workers = f->workers;
          m.concurrency = f->concurrency.Value();
          m.max_concurrency = f->concurrency.max_concurrency;
          m.adaptive_concurrency = f->adaptive;
          o.models.push_back(std::move(m));
        }
        o.suite.data_dir = f->data;
        if (!f->track.empty()) o.suite.track = *ParseTrack(f->track);
        if (!f->datasets.empty()) {
          o.suite.datasets = absl::StrSplit(f->datasets, ',', absl::SkipWhitespace());
        }
        o.suite.skip_invalid = f->skip_invalid;
        o.suite.pdf = f->pdf;
        o.allow_incomplete_zip = f->allow_incomplete;
        o.out_dir = f->out;
        o.replace = f->replace;
        o.probe = !f->no_probe;
        o.endpoint_down_timeout = absl::Seconds(f->endpoint_down_timeout_s);
        o.scheduler.max_pause = absl::Seconds(f->endpoint.max_retry_after_s);
        o.scheduler.auto_concurrency.window = absl::Seconds(f->concurrency_window_s);
        o.metrics_listen = f->metrics_listen;
        o.tty = f->progress == "bar" || (f->progress == "auto" && StderrIsTerminal());
        // Ctrl-C with batches running: a person at the terminal decides
        // what happens to them, unless --batch-on-exit did already.
        static TerminalBatchExitPrompt prompt(STDIN_FILENO, STDERR_FILENO);
        const bool any_batch = std::any_of(o.models.begin(), o.models.end(),
                                           [](const ModelRun& m) { return m.batch.enabled; });
        if (any_batch && f->batch.on_exit.empty() && ::isatty(STDIN_FILENO)) {
          o.batch_exit_prompt = &prompt;
        }
        static std::atomic<bool> interrupted{false};
        WatchTerminationSignals([](int) {
          if (!interrupted.exchange(true)) {
            std::cerr << "\nmedeval: stopping; answers so far are saved (Ctrl-C again to "
                         "quit at once)\n";
          }
        });
        return RunEmbeddedJob(o, interrupted, std::cout, std::cerr);
      }};
}

}  // namespace medeval::cli
