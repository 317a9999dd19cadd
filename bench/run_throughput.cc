// `medeval run` against the simulated server with capacity K and latency L:
// the ideal is K / L answers per second. Reports achieved / ideal for the
// embedded coordinator/worker path, and the same for the one-question-at-a-
// time approach of the existing script (ideal 1 / L) so the speed-up shows.
//
//   build/bench/run_throughput [--capacity 64] [--latency-ms 100]
//                              [--workers 2] [--concurrency 32] [--data DIR]
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "common/file_util.h"
#include "common/suite.h"

using namespace medeval;

namespace {

struct Result {
  int exit_code = 0;
  size_t questions = 0;
  double run_seconds = 0;   // run created -> last answer journaled (manifest)
  double wall_seconds = 0;  // whole command, start-up and output included
};

Result RunOnce(const std::string& data, const std::string& url, const std::string& out, int workers,
               int concurrency, const std::string& log) {
  Result r;
  const double t0 = bench::NowSeconds();
  pid_t p = bench::Spawn({bench::MedevalBinary(), "run", "--data", data, "--model", "bench-model",
                          "--base-url", url, "--out", out, "--workers", std::to_string(workers),
                          "--concurrency", std::to_string(concurrency), "--progress", "plain"},
                         log);
  r.exit_code = bench::WaitChild(p);
  r.wall_seconds = bench::NowSeconds() - t0;
  auto m = nlohmann::json::parse(
      ReadFile(JoinPath(out, "bench-model/manifest.json")).value_or("{}"), nullptr, false);
  if (m.is_object() && m.contains("started")) {
    r.questions = m["counts"]["answered"].get<size_t>();
    r.run_seconds = bench::IsoToSeconds(m["finished"]) - bench::IsoToSeconds(m["started"]);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int capacity = 64, workers = 2, concurrency = 32;
  double latency_ms = 100;
  std::string data;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--capacity")) capacity = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--latency-ms")) latency_ms = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--workers")) workers = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--concurrency")) concurrency = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--data")) data = argv[i + 1];
  }
  const std::string dir = bench::MakeTempDir();
  if (data.empty()) data = bench::V4LlmOrSynthetic(dir, "MedHC", 1620);
  const std::string small = JoinPath(dir, "small");
  bench::WriteSyntheticSuite(small, "MedHC", 40);

  const std::string port_file = JoinPath(dir, "port");
  pid_t sim = bench::Spawn({bench::MedevalBinary(), "sim", "--port-file", port_file, "--capacity",
                            std::to_string(capacity), "--latency-ms", absl::StrCat(latency_ms)},
                           JoinPath(dir, "sim.log"));
  int port = bench::WaitPort(port_file, sim, 5);
  const std::string url = absl::StrCat("http://127.0.0.1:", port, "/v1");
  const double ideal = capacity / (latency_ms / 1000.0);
  const double serial_ideal = 1.0 / (latency_ms / 1000.0);

  Result fast =
      RunOnce(data, url, JoinPath(dir, "fast"), workers, concurrency, JoinPath(dir, "fast.log"));
  Result serial = RunOnce(small, url, JoinPath(dir, "serial"), 1, 1, JoinPath(dir, "serial.log"));
  ::kill(sim, SIGTERM);
  bench::WaitChild(sim);

  std::printf("simulated server: capacity %d, latency %.0f ms -> ideal %.0f answers/s\n", capacity,
              latency_ms, ideal);
  std::printf("suite: %s\n\n", data.c_str());
  std::printf("%-40s %9s %10s %12s %9s %8s\n", "mode", "questions", "run s", "answers/s", "/ideal",
              "wall s");
  auto row = [&](const char* name, const Result& r, double ideal_rate) {
    double rate = r.run_seconds > 0 ? static_cast<double>(r.questions) / r.run_seconds : 0;
    std::printf("%-40s %9zu %10.2f %12.1f %9.3f %8.2f%s\n", name, r.questions, r.run_seconds, rate,
                rate / ideal_rate, r.wall_seconds, r.exit_code == 0 ? "" : "  (FAILED)");
    return rate;
  };
  std::string label =
      absl::StrCat("medeval run --workers ", workers, " --concurrency ", concurrency);
  double a = row(label.c_str(), fast, ideal);
  double b = row("one question at a time (--workers 1 --concurrency 1)", serial, serial_ideal);
  if (b > 0) std::printf("\nspeed-up over one at a time: %.1fx\n", a / b);
  RemoveAll(dir).IgnoreError();
  return fast.exit_code == 0 && serial.exit_code == 0 ? 0 : 1;
}
