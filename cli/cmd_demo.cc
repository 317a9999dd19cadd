// `medeval demo`: the project's sample suite, run end to end against the
// built-in simulated model server, writing a real upload zip.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "cli/signals.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/url.h"
#include "local/run_job.h"
#include "sim/sim_server.h"

#ifndef MEDEVAL_SOURCE_DIR
#define MEDEVAL_SOURCE_DIR "."
#endif

namespace medeval::cli {
namespace {

// Where the sample suite is: $MEDEVAL_SAMPLES, next to the executable's
// source tree, or where packages install it.
std::string FindSamples() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MEDEVAL_SAMPLES")) candidates.push_back(env);
  char exe[4096] = {0};
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    std::string dir = DirName(std::string(exe, static_cast<size_t>(n)));
    candidates.push_back(JoinPath(dir, "../samples/medbench-mini"));
    candidates.push_back(JoinPath(dir, "../share/medeval/samples/medbench-mini"));
  }
  candidates.push_back(JoinPath(MEDEVAL_SOURCE_DIR, "samples/medbench-mini"));
  candidates.push_back("/usr/share/medeval/samples/medbench-mini");
  for (const auto& c : candidates) {
    if (IsDirectory(c)) return c;
  }
  return "";
}

}  // namespace

Command AddDemoCommand(CLI::App& app) {
  struct Flags {
    std::string data;
    std::string out = "results";
    double latency_ms = 50;
    int workers = 2;
    int concurrency = 8;
    bool think = false;
    bool verbose = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "demo", "Run the sample suite end to end against the built-in simulated model");
  sub->add_option("--data", f->data, "Suite to run (default: the bundled sample suite)");
  sub->add_option("--out", f->out, "Output folder")->capture_default_str();
  sub->add_option("--latency-ms", f->latency_ms, "Simulated latency per answer")
      ->capture_default_str();
  sub->add_option("--workers", f->workers, "Local workers")->capture_default_str();
  sub->add_option("--concurrency", f->concurrency, "Requests in flight per worker")
      ->capture_default_str();
  sub->add_flag("--think", f->think, "Simulate a reasoning model (<think> blocks)");
  sub->add_flag("-v,--verbose", f->verbose, "Log what the coordinator and workers do");
  return {sub, [f]() -> int {
            if (!f->verbose && std::getenv("MEDEVAL_LOG_LEVEL") == nullptr) {
              SetLogLevel(LogLevel::kWarning);
            }
            std::string data = f->data.empty() ? FindSamples() : f->data;
            if (data.empty()) {
              std::cerr << "medeval demo: cannot find the sample suite; pass --data DIR or set "
                           "MEDEVAL_SAMPLES\n";
              return kExitBadInput;
            }
            sim::SimOptions so;
            so.latency_ms = f->latency_ms;
            so.jitter_sigma = 0.3;
            so.capacity = 32;
            so.style.think = f->think;
            so.style.flip_rate = 0.25;  // like real models, not always consistent
            sim::SimServer server(so);
            absl::Status st = server.Start();
            if (!st.ok()) {
              std::cerr << "medeval demo: " << st.message() << "\n";
              return kExitFailed;
            }
            const std::string url = absl::StrCat("http://127.0.0.1:", server.port(), "/v1");
            std::cerr << "medeval demo: simulated model server at " << url << "\n"
                      << "medeval demo: suite " << data << "\n";
            RunJobOptions o;
            o.suite.data_dir = data;
            o.out_dir = f->out;
            o.tty = StderrIsTerminal();
            ModelRun m;
            m.model = "medeval-sim";
            m.backend.endpoint = *ParseEndpoint(url);
            m.params = DefaultRequestParams();
            m.workers = f->workers;
            m.concurrency = f->concurrency;
            o.models.push_back(std::move(m));
            static std::atomic<bool> interrupted{false};
            WatchTerminationSignals([](int) { interrupted = true; });
            int code = RunEmbeddedJob(o, interrupted, std::cout, std::cerr);
            server.Stop();
            return code;
          }};
}

}  // namespace medeval::cli
