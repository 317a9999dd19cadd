// Four models at once, each behind its own simulated server (capacity 32,
// latency 100 ms: ideal 320 answers/s each), evaluated by one
// `medeval run --config`: each server's achieved / ideal, all at the same
// time.
//
//   build/bench/multi_model [--models 4] [--capacity 32] [--latency-ms 100]
//                           [--concurrency 40] [--data DIR]
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "common/file_util.h"

using namespace medeval;

int main(int argc, char** argv) {
  int models = 4, capacity = 32, concurrency = 40;
  double latency_ms = 100;
  std::string data;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--models")) models = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--capacity")) capacity = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--latency-ms")) latency_ms = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--concurrency")) concurrency = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--data")) data = argv[i + 1];
  }
  const std::string dir = bench::MakeTempDir();
  if (data.empty()) data = bench::V4LlmOrSynthetic(dir, "MedHC", 1620);
  std::vector<pid_t> sims;
  std::string yaml =
      absl::StrCat("defaults:\n  workers: 1\n  concurrency: ", concurrency, "\nmodels:\n");
  for (int m = 0; m < models; ++m) {
    const std::string port_file = JoinPath(dir, absl::StrCat("sim", m, ".port"));
    sims.push_back(bench::Spawn(
        {bench::MedevalBinary(), "sim", "--port-file", port_file, "--capacity",
         std::to_string(capacity), "--latency-ms", absl::StrCat(latency_ms), "--threads", "1"},
        JoinPath(dir, absl::StrCat("sim", m, ".log"))));
    int port = bench::WaitPort(port_file, sims.back(), 5);
    absl::StrAppend(&yaml, "  - name: model-", m, "\n    base_url: http://127.0.0.1:", port,
                    "/v1\n");
  }
  const std::string config = JoinPath(dir, "models.yaml");
  WriteFileAtomic(config, yaml, false).IgnoreError();
  const double t0 = bench::NowSeconds();
  pid_t run = bench::Spawn({bench::MedevalBinary(), "run", "--config", config, "--data", data,
                            "--out", JoinPath(dir, "out"), "--progress", "plain"},
                           JoinPath(dir, "run.log"));
  const int code = bench::WaitChild(run);
  const double wall = bench::NowSeconds() - t0;
  for (pid_t s : sims) ::kill(s, SIGTERM);
  for (pid_t s : sims) bench::WaitChild(s);

  const double ideal = capacity / (latency_ms / 1000.0);
  std::printf(
      "%d models at once, each behind its own sim: capacity %d, latency %.0f ms -> ideal "
      "%.0f answers/s each\n",
      models, capacity, latency_ms, ideal);
  std::printf("suite: %s; one worker per model, --concurrency %d\n\n", data.c_str(), concurrency);
  std::printf("%-10s %9s %8s %11s %7s\n", "model", "questions", "run s", "answers/s", "/ideal");
  double worst = 1e9;
  for (int m = 0; m < models; ++m) {
    auto text = ReadFile(JoinPath(dir, absl::StrCat("out/model-", m, "/manifest.json")));
    auto j = nlohmann::json::parse(text.value_or("{}"), nullptr, false);
    if (!j.is_object() || !j.contains("counts")) {
      std::printf("model-%d: no manifest\n", m);
      worst = 0;
      continue;
    }
    const double secs = bench::IsoToSeconds(j["finished"]) - bench::IsoToSeconds(j["started"]);
    const double n = j["counts"]["answered"].get<double>();
    const double rate = n / secs;
    worst = std::min(worst, rate / ideal);
    std::printf("model-%-4d %9.0f %8.2f %11.1f %7.3f\n", m, n, secs, rate, rate / ideal);
  }
  std::printf("\nworst / ideal: %.3f; whole command %.2f s%s\n", worst, wall,
              code == 0 ? "" : " (FAILED)");
  RemoveAll(dir).IgnoreError();
  return code;
}
