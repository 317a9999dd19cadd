// `medeval submit`: create runs (one per model) on a coordinator.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/security_flags.h"
#include "cli/signals.h"
#include "client/run_spec.h"
#include "client/wait.h"
#include "common/model_config.h"

namespace medeval::cli {
namespace {

// "90s", "10m", "1h30m" (absl::ParseDuration), or a bare number of seconds.
absl::StatusOr<absl::Duration> ParseWaitDuration(const std::string& text) {
  absl::Duration d;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    if (!std::isfinite(seconds)) return absl::InvalidArgumentError("a duration must be finite");
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a duration (90s, 10m, 1h)"));
  }
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' must be a positive duration"));
  }
  return d;
}

}  // namespace

Command AddSubmitCommand(CLI::App& app) {
  struct Flags {
    ClientSecurityFlags security;
    RequestFlags request;
    std::string data;
    std::string config;
    std::string track;
    std::string datasets;
    std::vector<std::string> models;
    bool wait = false;
    bool fresh = false;
    std::string out = "results";
    bool skip_invalid = false;
    v1::PdfOptions pdf;
    bool allow_incomplete = false;
    std::string progress = "auto";
    std::string wait_for_coordinator;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "submit", "Submit a suite to a coordinator, one run per model; prints the run ids");
  f->security.Add(sub);
  sub->add_option("--data", f->data, "Folder of the suite")->required();
  sub->add_option("--track", f->track, "v4-llm, v4-agent, v4-vlm or legacy-llm (default: detected)")
      ->check(CLI::IsMember({"v4-llm", "v4-agent", "v4-vlm", "legacy-llm"}));
  sub->add_option("--datasets", f->datasets, "Only these datasets (comma-separated)");
  sub->add_option("--model", f->models,
                  "Model to evaluate (repeat for several); with --config, only these of the file");
  sub->add_option("--config", f->config,
                  "Models file (YAML): the models, their request settings and limits");
  sub->add_flag("--wait", f->wait, "Show progress until done, then fetch the outputs");
  sub->add_flag("--fresh", f->fresh,
                "Start new runs even if identical ones exist (default: resume them)");
  sub->add_option("--out", f->out, "With --wait: output folder (OUT/<model>/...)")
      ->capture_default_str();
  sub->add_flag("--skip-invalid", f->skip_invalid, "Leave out invalid input lines");
  sub->add_flag("--allow-incomplete-zip", f->allow_incomplete,
                "Write the upload zip even when some questions failed");
  sub->add_option("--progress", f->progress, "auto, bar or plain")
      ->check(CLI::IsMember({"auto", "bar", "plain"}))
      ->capture_default_str();
  sub->add_option("--wait-for-coordinator", f->wait_for_coordinator,
                  "Retry with back-off while the coordinator is unreachable or starting, for up "
                  "to DURATION (90s, 10m, 1h; a bare number is seconds)")
      ->type_name("DURATION")
      ->check([](const std::string& v) -> std::string {
        auto d = ParseWaitDuration(v);
        return d.ok() ? std::string() : std::string(d.status().message());
      });
  f->request.Add(sub);
  AddPdfFlags(sub, &f->pdf);
  return {
      sub, [f]() -> int {
        auto security = f->security.Resolve();
        if (!security.ok()) {
          std::cerr << "medeval submit: " << security.status().message() << "\n";
          return kExitBadInput;
        }
        SuiteSelection sel;
        sel.data_dir = f->data;
        if (!f->track.empty()) sel.track = *ParseTrack(f->track);
        if (!f->datasets.empty()) {
          sel.datasets = absl::StrSplit(f->datasets, ',', absl::SkipWhitespace());
        }
        sel.skip_invalid = f->skip_invalid;
        sel.pdf = f->pdf;
        int code = 0;
        auto suite = LoadSuiteForRun(sel, std::cerr, &code);
        if (!suite.ok()) {
          std::cerr << "medeval submit: " << suite.status().message() << "\n";
          return code;
        }
        auto client = CoordinatorClient::Connect(f->security.coordinator, *security);
        if (!client.ok()) {
          std::cerr << "medeval submit: " << client.status().message() << "\n";
          return kExitBadInput;
        }
        // (model, request settings, limits) of each run to create.
        struct Wanted {
          std::string model;
          v1::RequestParams params;
          v1::ModelLimits limits;
          v1::ModelPrice price;  // for the cost in status and manifest
        };
        std::vector<Wanted> wanted;
        if (!f->config.empty()) {
          if (CLI::Option* o = FirstGiven(f->request.options)) {
            std::cerr << "medeval submit: " << o->get_name()
                      << " is set per model in the --config file\n";
            return kExitBadInput;
          }
          auto config = LoadModelConfig(f->config, DefaultRequestParams());
          if (!config.ok()) {
            std::cerr << "medeval submit: " << config.status().message() << "\n";
            return kExitBadInput;
          }
          for (const ModelEntry& e : config->models) {
            if (f->models.empty() ||
                std::find(f->models.begin(), f->models.end(), e.name) != f->models.end()) {
              wanted.push_back({e.name, e.params, e.limits, e.price});
            }
          }
          for (const std::string& m : f->models) {
            if (config->Find(m) == nullptr) {
              std::cerr << "medeval submit: --model " << m << " is not in " << f->config << "\n";
              return kExitBadInput;
            }
          }
        } else {
          if (f->models.empty()) {
            std::cerr << "medeval submit: name the models with --model (or --config)\n";
            return kExitBadInput;
          }
          auto params = f->request.Params();
          if (!params.ok()) {
            std::cerr << "medeval submit: " << params.status().message() << "\n";
            return kExitBadInput;
          }
          auto secret = f->request.WorkerHeaders();
          if (secret.ok() && !secret->empty()) {
            // A run's settings are saved and published: a credential would
            // be too. The workers hold their own.
            std::cerr << "medeval submit: --header " << secret->front().first
                      << " is a credential; give it to the workers (medeval worker "
                         "--header-env \""
                      << secret->front().first
                      << ": VARIABLE\", or header_env in the models file), not to the run\n";
            return kExitBadInput;
          }
          for (const std::string& m : f->models) {
            wanted.push_back({m, *params, f->request.Limits(), f->request.Price()});
          }
        }
        // Only once the input is known good: waiting would not make it better.
        if (!f->wait_for_coordinator.empty()) {
          absl::Status up = (*client)->WaitUntilAnswering(
              *ParseWaitDuration(f->wait_for_coordinator),
              [](const absl::Status& why, absl::Duration next) {
                std::cerr << "medeval submit: waiting for the coordinator (" << why.message()
                          << "); next try in " << absl::FormatDuration(next) << std::endl;
              });
          if (!up.ok()) {
            std::cerr << "medeval submit: " << up.message() << "\n";
            return up.code() == absl::StatusCode::kInvalidArgument ? kExitBadInput : kExitFailed;
          }
        }
        std::vector<std::string> ids;
        for (const Wanted& w : wanted) {
          v1::RunSpec spec =
              MakeRunSpec(*suite, w.model, w.params, w.limits, sel, f->allow_incomplete);
          if (f->fresh) spec.clear_idempotency_key();
          // Not part of the run's identity (set after its key is made).
          *spec.mutable_price() = w.price;
          auto resp = (*client)->Submit(spec, *suite);
          if (!resp.ok()) {
            std::cerr << "medeval submit: " << w.model << ": " << resp.status().message() << "\n";
            return resp.status().code() == absl::StatusCode::kInvalidArgument ? kExitBadInput
                                                                              : kExitFailed;
          }
          if (resp->resumed()) {
            std::cerr << "medeval submit: " << w.model << ": resuming identical run "
                      << resp->run_id() << " (--fresh starts a new one)\n";
          }
          ids.push_back(resp->run_id());
          if (!f->wait) std::cout << resp->run_id() << std::endl;
        }
        if (!f->wait) return kExitOk;
        static std::atomic<bool> interrupted{false};
        WatchTerminationSignals([](int) {
          if (!interrupted.exchange(true)) {
            std::cerr << "\nmedeval submit: stopped watching; the runs go on at the coordinator "
                         "(medeval status, then medeval fetch RUN_ID --out DIR)\n";
          }
        });
        WaitOptions wo;
        wo.remote = true;
        wo.out_dir = f->out;
        wo.tty = f->progress == "bar" || (f->progress == "auto" && StderrIsTerminal());
        return WaitAndFetch(**client, ids, wo, interrupted, std::cout, std::cerr);
      }};
}

}  // namespace medeval::cli
