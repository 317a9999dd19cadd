// `medeval run`: evaluate a model on a MedBench suite, embedded on this
// machine (coordinator + local workers on loopback).
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/signals.h"
#include "client/run_job.h"
#include "common/log.h"

namespace medeval::cli {

Command AddRunCommand(CLI::App& app) {
  struct Flags {
    std::string data;
    std::string track;
    std::string datasets;
    std::string out = "results";
    int workers = 2;
    int concurrency = 16;
    bool skip_invalid = false;
    bool allow_incomplete = false;
    bool no_probe = false;
    std::string progress = "auto";
    bool verbose = false;
    EndpointFlags endpoint;
    RequestFlags request;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "run", "Evaluate a model on a MedBench suite on this machine and write the upload files");
  sub->add_option("--data", f->data, "Folder of the suite (<Dataset>.jsonl, or legacy "
                                     "<Dataset>/<Dataset>_test.jsonl)")
      ->required();
  sub->add_option("--track", f->track, "v4-llm, v4-agent, v4-vlm or legacy-llm (default: detected)")
      ->check(CLI::IsMember({"v4-llm", "v4-agent", "v4-vlm", "legacy-llm"}));
  sub->add_option("--datasets", f->datasets, "Only these datasets (comma-separated)");
  sub->add_option("--out", f->out, "Output folder; results go to OUT/<model>/")
      ->capture_default_str();
  sub->add_option("--workers", f->workers, "Local workers")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sub->add_option("--concurrency", f->concurrency, "Requests in flight per worker")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  sub->add_flag("--skip-invalid", f->skip_invalid,
                "Leave out invalid input lines (listed in the manifest) instead of refusing");
  sub->add_flag("--allow-incomplete-zip", f->allow_incomplete,
                "Write the upload zip even when some questions failed");
  sub->add_flag("--no-probe", f->no_probe, "Do not check the endpoint before starting");
  sub->add_option("--progress", f->progress, "auto, bar or plain")
      ->check(CLI::IsMember({"auto", "bar", "plain"}))
      ->capture_default_str();
  sub->add_flag("-v,--verbose", f->verbose, "Log what the coordinator and workers do");
  f->endpoint.Add(sub);
  f->request.Add(sub);

  return {sub, [f]() -> int {
            if (!f->verbose && std::getenv("MEDEVAL_LOG_LEVEL") == nullptr) {
              SetLogLevel(LogLevel::kWarning);
            }
            absl::Status st = f->endpoint.Resolve();
            auto backend = st.ok() ? f->endpoint.Backend() : absl::StatusOr<BackendConfig>(st);
            if (!backend.ok()) {
              std::cerr << "medeval run: " << backend.status().message() << "\n";
              return kExitBadInput;
            }
            RunJobOptions o;
            o.suite.data_dir = f->data;
            if (!f->track.empty()) o.suite.track = *ParseTrack(f->track);
            if (!f->datasets.empty()) {
              o.suite.datasets = absl::StrSplit(f->datasets, ',', absl::SkipWhitespace());
            }
            o.suite.skip_invalid = f->skip_invalid;
            o.allow_incomplete_zip = f->allow_incomplete;
            o.out_dir = f->out;
            o.probe = !f->no_probe;
            o.tty = f->progress == "bar" || (f->progress == "auto" && StderrIsTerminal());
            ModelRun m;
            m.model = f->endpoint.model;
            m.backend = *backend;
            m.params = f->request.Params();
            m.workers = f->workers;
            m.concurrency = f->concurrency;
            o.models.push_back(std::move(m));
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
