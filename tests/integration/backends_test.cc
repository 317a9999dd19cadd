// Model backends with real processes: a worker supervising its own model
// server (medeval sim as the served command), shared rate limits, the
// model-wide 429 pause, several models from one config file.
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/utf8.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

json StatsAt(int port) {
  auto r = testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", port, "/stats"));
  return r.status == 200 ? json::parse(r.body) : json();
}

class BackendsTest : public ::testing::Test {
 protected:
  std::string Run(std::vector<std::string> args) {
    std::string out;
    code_ = testing::RunMedeval(args, tmp_.path(), &out, &err_);
    return out;
  }
  testing::TempDir tmp_;
  testing::Cluster cluster_{tmp_.path()};
  std::string err_;
  int code_ = 0;
};

TEST_F(BackendsTest, AServedModelThatCrashesIsRestartedAndTheRunCompletes) {
  const int n = 600;
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", n);
  const int port = testing::FreePort();
  const std::string marker = absl::StrCat("crashme-", ::getpid());
  // The served process's command line has the real port where the worker's
  // has "{port}"; the brackets keep pkill's own shell from matching.
  const std::string pattern = absl::StrCat("[s]im --listen 127.0.0.1:", port);
  cluster_.StartCoordinator();
  cluster_.StartWorker(
      "served",
      {"--model", "m", "--concurrency", "4", "--serve-port", std::to_string(port), "--serve",
       absl::StrCat(testing::MedevalBinary(), " sim --listen 127.0.0.1:{port} ",
                    "--latency-ms 20 --capacity 4 --model-name ", marker)});
  ASSERT_TRUE(testing::WaitFor([&] { return StatsAt(port).is_object(); })) << "server never up";
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"submit", "--data", tmp_ / "suite", "--model", "m"}, &out, &err), 0);
  const std::string run(absl::StripAsciiWhitespace(out));
  ASSERT_TRUE(testing::WaitFor([&] {
    json s = StatsAt(port);
    return s.is_object() && s["completed"].get<int>() >= 100;
  }));
  ASSERT_EQ(std::system(absl::StrCat("pkill -9 -f '", pattern, "'").c_str()), 0);
  ASSERT_TRUE(cluster_.WaitRunFinished(run, absl::Seconds(120)));
  const std::string log = cluster_.worker("served").err();
  EXPECT_TRUE(absl::StrContains(log, "pausing (the model server killed by signal 9)")) << log;
  EXPECT_TRUE(absl::StrContains(log, "restarting it in")) << log;
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "out"}, &out, &err), 0) << err;
  CheckRunOutputs(tmp_ / "suite", tmp_ / "out/m", "m", sim::AnswerStyle());

  // SIGTERM: the worker drains, then stops its server.
  cluster_.worker("served").Kill(SIGTERM);
  EXPECT_EQ(cluster_.worker("served").Wait(absl::Seconds(60)), 0);
  EXPECT_NE(std::system(absl::StrCat("pgrep -f '", pattern, "' >/dev/null").c_str()), 0)
      << "the served model outlived its worker";
}

TEST_F(BackendsTest, AServedModelThatNeverGetsReadyIsReported) {
  cluster_.StartCoordinator();
  cluster_.StartWorker("w", {"--model", "m", "--serve", "exit 3"});
  EXPECT_EQ(cluster_.worker("w").Wait(absl::Seconds(120)), 1);
  EXPECT_TRUE(absl::StrContains(cluster_.worker("w").err(),
                                "the model server failed to start 5 times; last: the model "
                                "server exited with code 3"))
      << cluster_.worker("w").err();
}

TEST_F(BackendsTest, ThreeWorkersHoldASharedRequestBudget) {
  sim::SimServer sim((sim::SimOptions()));
  ASSERT_TRUE(sim.Start().ok());
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", 2000);
  cluster_.StartCoordinator();
  for (const char* w : {"w1", "w2", "w3"}) {
    cluster_.StartWorker(w, {"--model", "m", "--concurrency", "8", "--base-url",
                             absl::StrCat("http://127.0.0.1:", sim.port(), "/v1")});
  }
  // Every request the sim counts was granted by the coordinator after t0 (the
  // sim serves only this test), and the coordinator grants at most 10/s plus
  // its full bucket (rpm / 120 = 5). Unlimited, or limited per worker, three
  // workers at concurrency 8 against an instant sim go far beyond that. A
  // loaded machine only makes the run slower, never the bound tighter.
  const absl::Time t0 = absl::Now();
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"submit", "--data", tmp_ / "suite", "--model", "m", "--rpm", "600"}, &out,
                         &err),
            0)
      << err;
  auto requests = [&] { return json::parse(sim.StatsJson())["requests"].get<int>(); };
  // All three share the budget: each answers its part.
  auto all_answered = [&] {
    auto st = cluster_.client().Status("");
    if (!st.ok() || st->workers_size() != 3) return false;
    for (const auto& w : st->workers()) {
      if (w.answered() < 20) return false;
    }
    return true;
  };
  ASSERT_TRUE(
      testing::WaitFor([&] { return requests() >= 150 && all_answered(); }, absl::Seconds(180)))
      << requests() << " requests\n"
      << cluster_.coordinator().err();
  const int made = requests();
  const double allowed = 600.0 / 60 * absl::ToDoubleSeconds(absl::Now() - t0) + 600.0 / 120;
  EXPECT_LE(made, allowed + 1) << made << " requests where 600/min allows " << allowed;
}

TEST_F(BackendsTest, A429StormPausesTheModelAndEveryQuestionFinishes) {
  sim::SimOptions o;
  o.latency_ms = 50;
  o.ratelimit_rate = 0.5;
  o.retry_after_s = 4;
  sim::SimServer sim(o);
  ASSERT_TRUE(sim.Start().ok());
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", 300);
  cluster_.StartCoordinator();
  for (const char* w : {"w1", "w2"}) {
    cluster_.StartWorker(w, {"--model", "m", "--concurrency", "4", "--base-url",
                             absl::StrCat("http://127.0.0.1:", sim.port(), "/v1")});
  }
  std::string out, err;
  ASSERT_EQ(
      cluster_.Cli({"submit", "--data", tmp_ / "suite", "--model", "m", "--max-attempts", "50"},
                   &out, &err),
      0);
  const std::string run(absl::StripAsciiWhitespace(out));
  auto stats = [&] { return json::parse(sim.StatsJson()); };
  // The coordinator's pause, as its status shows it (0: not paused).
  auto paused_until = [&]() -> int64_t {
    auto st = cluster_.client().Status(run);
    return st.ok() && st->runs_size() == 1 ? st->runs(0).paused_until_unix_ms() : 0;
  };
  // Half the requests still succeed, which would free slots for new ones;
  // but the whole model is paused for the Retry-After (4 s): once the
  // requests already sent are answered, none goes out until the pause ends.
  // The window is checked against the coordinator's own end of the pause; a
  // window the machine was too slow to fit inside it proves nothing, so the
  // next pause (there are many at this 429 rate) is tried instead.
  bool checked = false;
  int64_t seen_until = 0;
  for (int attempt = 0; attempt < 8 && !checked; ++attempt) {
    int64_t until = 0;
    ASSERT_TRUE(
        testing::WaitFor([&] { return (until = paused_until()) > seen_until; }, absl::Seconds(60)))
        << "no new pause\n"
        << cluster_.coordinator().err();
    seen_until = until;
    const absl::Time end = absl::FromUnixMillis(until);
    // Requests sent before a worker heard of the pause are answered (50 ms);
    // the pause reaches every worker well within the second that follows.
    if (!testing::WaitFor([&] { return stats()["in_flight"].get<int>() == 0; }, end - absl::Now()))
      continue;
    absl::SleepFor(absl::Seconds(1));
    const int c1 = stats()["requests"].get<int>();
    absl::SleepFor(absl::Seconds(1));
    const int c2 = stats()["requests"].get<int>();
    // Both counts taken a second or more before the coordinator's end of the
    // pause (a worker's own pause ends no earlier).
    if (absl::Now() + absl::Seconds(1) > end) continue;
    EXPECT_EQ(c2, c1) << "requests went out during the pause";
    checked = true;
  }
  EXPECT_TRUE(checked) << "the machine never fitted one second inside a 4 s pause";
  ASSERT_EQ(testing::HttpCall("POST", absl::StrCat("http://127.0.0.1:", sim.port(), "/control"),
                              R"({"ratelimit_rate": 0})")
                .status,
            200);
  ASSERT_TRUE(cluster_.WaitRunFinished(run, absl::Seconds(120)));
  EXPECT_TRUE(absl::StrContains(cluster_.coordinator().err(), "model m: paused for"))
      << cluster_.coordinator().err();
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "out"}, &out, &err), 0) << err;
  CheckRunOutputs(tmp_ / "suite", tmp_ / "out/m", "m", o.style);
}

TEST_F(BackendsTest, TwoModelsFromOneConfigFileInOneRun) {
  sim::SimServer sim((sim::SimOptions()));
  ASSERT_TRUE(sim.Start().ok());
  const std::string url = absl::StrCat("http://127.0.0.1:", sim.port(), "/v1");
  testing::WriteText(tmp_ / "models.yaml", absl::StrCat(R"(defaults:
  workers: 1
  concurrency: 4
models:
  - name: alpha
    base_url: )",
                                                        url, R"(
  - name: org/beta
    base_url: )",
                                                        url, R"(
    workers: 2
    request:
      max_tokens: 3
      extra_body: {top_k: 5}
)"));
  Run({"run", "--config", tmp_ / "models.yaml", "--data", testing::SamplesDir(), "--out",
       tmp_ / "out"});
  ASSERT_EQ(code_, 0) << err_;
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "out/alpha", "alpha", sim::AnswerStyle());
  // beta's max_tokens reached the server: longer answers are cut short.
  int truncated = 0;
  for (const auto& r : testing::ReadJsonl(tmp_ / "out/org_beta/records.jsonl")) {
    EXPECT_LE(Utf8Length(r["raw_text"].get<std::string>()), 3u) << r.dump();
    if (r["finish_reason"] == "length") {
      ++truncated;
      EXPECT_TRUE(absl::StrContains(r["flags"].dump(), "truncated")) << r.dump();
    }
  }
  EXPECT_GT(truncated, 10);
  json m = json::parse(testing::ReadText(tmp_ / "out/org_beta/manifest.json"));
  EXPECT_EQ(m["request"]["max_tokens"], 3);
  EXPECT_EQ(m["request"]["extra_body"]["top_k"], 5);
}

TEST_F(BackendsTest, ConfigFileErrorsAreBadInput) {
  testing::WriteText(tmp_ / "models.yaml", "models:\n  - name: a\n    workers: -1\n");
  Run({"run", "--config", tmp_ / "models.yaml", "--data", testing::SamplesDir()});
  EXPECT_EQ(code_, 2);
  EXPECT_TRUE(absl::StrContains(err_, tmp_ / "models.yaml:3: 'workers' must be between 1")) << err_;
  testing::WriteText(tmp_ / "models.yaml", "models:\n  - name: a\n");
  Run({"run", "--config", tmp_ / "models.yaml", "--data", testing::SamplesDir()});
  EXPECT_EQ(code_, 2);
  EXPECT_TRUE(absl::StrContains(err_, "models.yaml:2: model 'a': needs 'base_url'")) << err_;
  Run({"run", "--config", tmp_ / "models.yaml", "--data", testing::SamplesDir(), "--model", "x"});
  EXPECT_EQ(code_, 2);
  EXPECT_TRUE(absl::StrContains(err_, "--model is set per model in the --config file")) << err_;
}

TEST_F(BackendsTest, HeadersAndAdaptiveConcurrency) {
  sim::SimOptions o;
  o.api_key = "via-header";
  o.capacity = 2;
  o.overflow_reject = true;  // a hosted API at its limit: 429s
  o.retry_after_s = 0;
  o.latency_ms = 20;
  sim::SimServer sim(o);
  ASSERT_TRUE(sim.Start().ok());
  Run({"run",
       "--data",
       testing::SamplesDir(),
       "--model",
       "m",
       "--base-url",
       absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"),
       "--header",
       "Authorization: Bearer via-header",
       "--workers",
       "1",
       "--concurrency",
       "16",
       "--adaptive-concurrency",
       "--max-attempts",
       "50",
       "--retry-base-ms",
       "20",
       "--out",
       tmp_ / "out",
       "-v"});
  ASSERT_EQ(code_, 0) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "429: 8 requests in flight from now on")) << err_;
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "out/m", "m", o.style);
}

}  // namespace
}  // namespace medeval
