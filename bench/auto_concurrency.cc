// Fixed concurrencies against `--concurrency auto` on three simulated
// endpoints (medeval sim --profile ...): continuous batching with
// preemption (a knee, then throughput falls), a 16-slot server that queues
// the rest, and a hosted API that answers 429 beyond 20 requests/s. Each
// setting is one `medeval run` of the same questions with one worker;
// throughput is answers / (finished - started) from its manifest, 429s
// are the sim's count.
//
//   build/bench/auto_concurrency [--questions 600] [--profiles batching,queue,hosted]
//                                [--fixed 8,16,32,64,128,256] [--window 5] [--data DIR]
//
// The questions are the first datasets of the v4 LLM track in
// ../shared/medbench (whole datasets, up to --questions), else synthetic.
#include <curl/curl.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "bench/bench_util.h"
#include "common/file_util.h"

using namespace medeval;
using json = nlohmann::json;

namespace {

struct Sim {
  pid_t pid = 0;
  int port = 0;
};

Sim StartSim(const std::string& dir, const std::string& profile) {
  Sim s;
  const std::string port_file = JoinPath(dir, profile + ".port");
  s.pid = bench::Spawn({bench::MedevalBinary(), "sim", "--profile", profile, "--port-file",
                        port_file, "--model-name", "m"},
                       JoinPath(dir, profile + ".sim.log"));
  s.port = bench::WaitPort(port_file, s.pid, 5);
  return s;
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The sim's count of 429s so far (its rate limit), from /stats.
long Sim429s(int port) {
  std::string body;
  CURL* curl = curl_easy_init();
  const std::string url = absl::StrCat("http://127.0.0.1:", port, "/stats");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  auto j = json::parse(rc == CURLE_OK ? body : "", nullptr, false);
  if (!j.is_object() || !j.contains("rate_limit")) return -1;
  return j["rate_limit"].value("limited", 0L);
}

struct Result {
  std::string setting;
  double answers_per_s = 0;
  long answered = 0, failed = 0, attempts = 0;
  long rate_limited = 0;
  long timeouts = 0;        // questions with a timed-out request
  int exit_code = 0;        // 1: some questions failed (here: attempts spent on 429s)
  std::string final_limit;  // auto: the limit at the end, from the log
};

Result Run(const std::string& dir, const std::string& data, const std::vector<std::string>& ds,
           const Sim& sim, const std::string& concurrency, double window) {
  Result r;
  r.setting = concurrency;
  const std::string out = JoinPath(dir, "out-" + concurrency);
  const long before = Sim429s(sim.port);
  std::vector<std::string> argv = {bench::MedevalBinary(),
                                   "run",
                                   "--data",
                                   data,
                                   "--model",
                                   "m",
                                   "--base-url",
                                   absl::StrCat("http://127.0.0.1:", sim.port, "/v1"),
                                   "--workers",
                                   "1",
                                   "--concurrency",
                                   concurrency,
                                   "--concurrency-window",
                                   absl::StrCat(window),
                                   "--retry-base-ms",
                                   "100",
                                   "--out",
                                   out,
                                   "--progress",
                                   "plain",
                                   "--verbose"};
  if (!ds.empty()) {
    argv.push_back("--datasets");
    argv.push_back(absl::StrJoin(ds, ","));
  }
  const std::string log = JoinPath(dir, "run-" + concurrency + ".log");
  const int code = bench::WaitChild(bench::Spawn(argv, log));
  r.rate_limited = Sim429s(sim.port) - before;
  auto text = ReadFile(JoinPath(out, "m/manifest.json"));
  auto j = json::parse(text.value_or("{}"), nullptr, false);
  r.exit_code = code;
  if (!j.is_object() || !j.contains("counts")) {
    std::fprintf(stderr, "run --concurrency %s wrote no manifest (exit %d); see %s\n",
                 concurrency.c_str(), code, log.c_str());
    return r;
  }
  const double secs = bench::IsoToSeconds(j["finished"]) - bench::IsoToSeconds(j["started"]);
  r.answered = j["counts"].value("answered", 0L);
  r.failed = j["counts"].value("failed", 0L);
  r.attempts = j["counts"].value("attempts", 0L);
  r.answers_per_s = secs > 0 ? static_cast<double>(r.answered) / secs : 0;
  // The last "model m: A -> B requests in flight (why)" line of the log.
  auto lines = ReadFile(log);
  if (lines.ok()) {
    size_t at = lines->rfind("requests in flight (");
    if (at != std::string::npos) {
      size_t arrow = lines->rfind("-> ", at);
      if (arrow != std::string::npos) {
        r.final_limit =
            std::string(absl::StripAsciiWhitespace(lines->substr(arrow + 3, at - arrow - 3)));
      }
    }
  }
  // Questions that saw a request time out (the record keeps the last error).
  if (auto records = ReadFile(JoinPath(out, "m/records.jsonl")); records.ok()) {
    for (absl::string_view line : absl::StrSplit(*records, '\n')) {
      if (absl::StrContains(line, "no response within")) ++r.timeouts;
    }
  }
  RemoveAll(out).IgnoreError();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int questions = 600;
  double window = 5;
  std::string data, profiles = "batching,queue,hosted", fixed = "8,16,32,64,128,256";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--questions")) questions = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--profiles")) profiles = argv[i + 1];
    if (!std::strcmp(argv[i], "--fixed")) fixed = argv[i + 1];
    if (!std::strcmp(argv[i], "--window")) window = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--data")) data = argv[i + 1];
  }
  const std::string dir = bench::MakeTempDir();
  std::vector<std::string> datasets;
  if (data.empty()) data = bench::V4LlmOrSynthetic(dir, "MedHC", questions);
  int taken = 0;
  if (auto files = ListDir(data); files.ok() && data != JoinPath(dir, "synthetic")) {
    std::sort(files->begin(), files->end());
    for (const std::string& f : *files) {
      if (taken >= questions || !absl::EndsWith(f, ".jsonl")) continue;
      auto text = ReadFile(JoinPath(data, f));
      if (!text.ok()) continue;
      taken += static_cast<int>(std::count(text->begin(), text->end(), '\n'));
      datasets.push_back(f.substr(0, f.size() - 6));
    }
  } else {
    taken = questions;
  }
  std::printf("questions: %d from %s; one worker; auto judges windows of %.1f s\n\n", taken,
              data.c_str(), window);
  std::printf("%-9s %-8s %10s %8s %7s %8s %6s  %s\n", "profile", "setting", "answers/s", "/best",
              "429s", "timeouts", "failed", "auto's final limit");
  int worst_ok = 1;
  for (const std::string& profile : std::vector<std::string>(absl::StrSplit(profiles, ','))) {
    Sim sim = StartSim(dir, profile);
    if (sim.port == 0) {
      std::fprintf(stderr, "sim --profile %s did not start\n", profile.c_str());
      return 1;
    }
    std::vector<Result> results;
    for (const std::string& c : std::vector<std::string>(absl::StrSplit(fixed, ','))) {
      results.push_back(Run(dir, data, datasets, sim, c, window));
    }
    const Result a = Run(dir, data, datasets, sim, "auto", window);
    ::kill(sim.pid, SIGTERM);
    bench::WaitChild(sim.pid);
    double best = 0;
    std::string best_setting;
    for (const Result& r : results) {
      if (r.answers_per_s > best) {
        best = r.answers_per_s;
        best_setting = r.setting;
      }
    }
    results.push_back(a);
    for (const Result& r : results) {
      std::printf("%-9s %-8s %10.1f %8.2f %7ld %8ld %6ld  %s\n", profile.c_str(), r.setting.c_str(),
                  r.answers_per_s, best > 0 ? r.answers_per_s / best : 0, r.rate_limited,
                  r.timeouts, r.failed, r.final_limit.c_str());
    }
    // The fixed setting closest in throughput to auto, for its 429s.
    const Result* near = nullptr;
    for (size_t i = 0; i + 1 < results.size(); ++i) {
      if (near == nullptr || std::abs(results[i].answers_per_s - a.answers_per_s) <
                                 std::abs(near->answers_per_s - a.answers_per_s)) {
        near = &results[i];
      }
    }
    const double ratio = best > 0 ? a.answers_per_s / best : 0;
    std::printf(
        "%-9s auto / best fixed (%s): %.2f; 429s: auto %ld, fixed %s at similar "
        "throughput %ld; failed %ld\n\n",
        profile.c_str(), best_setting.c_str(), ratio, a.rate_limited,
        near ? near->setting.c_str() : "-", near ? near->rate_limited : 0, a.failed);
    if (ratio < 0.9 || a.failed > 0 || a.timeouts > 0) worst_ok = 0;
    std::fflush(stdout);
  }
  RemoveAll(dir).IgnoreError();
  std::printf("%s\n", worst_ok ? "auto reached >= 0.9 of the best fixed setting on every profile"
                               : "auto fell below 0.9 of the best fixed setting somewhere");
  return worst_ok ? 0 : 1;
}
