// A model endpoint that is down, or is not an API at all, against real
// `medeval run` processes and real coordinator and worker processes: the
// run waits for it (no question is failed or asked twice for it), stops
// after --endpoint-down-timeout with the answers saved, refuses a web
// server or a redirect before asking anything, and saves every answer
// received before a key is revoked.
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;
using testing::PromValue;

class EndpointDownTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"); }
  json Stats() const { return json::parse(sim_->StatsJson()); }
  std::vector<std::string> RunArgs(int questions, std::vector<std::string> extra = {}) {
    const std::string data = tmp_ / "suite";
    if (!PathExists(JoinPath(data, "MedHC.jsonl"))) {
      testing::WriteSyntheticSuite(data, "MedHC", questions);
    }
    std::vector<std::string> args = {"run",     "--data",      data,
                                     "--model", "medeval-sim", "--base-url",
                                     Url(),     "--out",       tmp_ / "results"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  int Run(const std::vector<std::string>& args) {
    return testing::RunMedeval(args, tmp_.path(), &out_, &err_);
  }
  // Every question answered exactly once by the server, over all runs.
  void ExpectEachAnsweredOnce(int questions) {
    json s = Stats();
    EXPECT_EQ(s["completed"], questions) << err_;
    EXPECT_EQ(s["questions"], questions) << err_;
    for (const auto& [key, q] : s["per_question"].items()) EXPECT_EQ(q["answered"], 1) << key;
  }
  json Manifest() {
    return json::parse(testing::ReadText(tmp_ / "results/medeval-sim/manifest.json"));
  }

  testing::TempDir tmp_;
  std::unique_ptr<sim::SimServer> sim_;
  std::string out_, err_;
};

TEST_F(EndpointDownTest, ARunWaitsForAnEndpointThatStopsAndComesBack) {
  sim::SimOptions o;
  o.latency_ms = 20;
  o.down_after = 40;
  o.down_for = absl::Seconds(3);
  Serve(o);
  // Two attempts and a 50 ms back-off would fail every question asked
  // during a 3 s outage if the outage spent attempts.
  ASSERT_EQ(Run(RunArgs(200, {"--workers", "2", "--concurrency", "8", "--max-attempts", "2",
                              "--retry-base-ms", "50", "--endpoint-probe-max", "1"})),
            0)
      << err_;
  EXPECT_TRUE(absl::StrContains(err_, "endpoint down since")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "connection refused")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "answers again")) << err_;
  EXPECT_EQ(Stats()["down_episodes"], 1) << Stats().dump();
  json m = Manifest();
  EXPECT_EQ(m["counts"]["answered"], 200) << err_;
  EXPECT_EQ(m["counts"]["failed"], 0) << err_;
  ExpectEachAnsweredOnce(200);
}

TEST_F(EndpointDownTest, ProxyErrorsAreTheEndpointDownNotTheQuestions) {
  sim::SimOptions o;
  o.latency_ms = 20;
  Serve(o);
  testing::Subprocess run;
  std::vector<std::string> args =
      RunArgs(150, {"--workers", "1", "--concurrency", "8", "--max-attempts", "2",
                    "--retry-base-ms", "20", "--endpoint-probe-max", "1"});
  args.insert(args.begin(), testing::MedevalBinary());
  run.Start(args, tmp_.path());
  ASSERT_TRUE(testing::WaitFor([&] { return Stats()["completed"].get<int>() >= 30; }));
  ASSERT_EQ(sim_->Control(R"({"proxy_status": 502})"), "");
  ASSERT_TRUE(
      testing::WaitFor([&] { return Stats()["endpoint_faults"]["proxy_error"].get<int>() >= 20; }));
  absl::SleepFor(absl::Seconds(2));
  ASSERT_EQ(sim_->Control(R"({"proxy_status": 0})"), "");
  ASSERT_EQ(run.Wait(absl::Seconds(120)), 0) << run.err();
  EXPECT_TRUE(absl::StrContains(run.err(), "HTTP 502: 502 Bad Gateway")) << run.err();
  EXPECT_EQ(Manifest()["counts"]["failed"], 0);
  ExpectEachAnsweredOnce(150);
}

TEST_F(EndpointDownTest, ARunStopsAfterTheEndpointDownTimeoutAndContinuesLater) {
  sim::SimOptions o;
  o.latency_ms = 20;
  o.down_after = 30;
  o.down_for = absl::Hours(1);  // until the test ends it
  Serve(o);
  EXPECT_EQ(Run(RunArgs(100, {"--workers", "2", "--concurrency", "4", "--endpoint-down-timeout",
                              "1", "--endpoint-probe-max", "1"})),
            1)
      << err_;
  EXPECT_TRUE(Stats()["down"].get<bool>()) << "it waited for the endpoint, not the timeout";
  EXPECT_TRUE(absl::StrContains(err_, "endpoint down since")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "--endpoint-down-timeout")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "answers are saved")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "run the same command again to continue")) << err_;
  EXPECT_FALSE(absl::StrContains(err_, "questions failed")) << err_;
  const int saved = Stats()["completed"].get<int>();
  EXPECT_GE(saved, 30);
  EXPECT_LT(saved, 100);

  // Back up: the same command asks only what is left, once each.
  sim_->GoDown(absl::Milliseconds(1));  // ends the outage now
  ASSERT_TRUE(testing::WaitFor([&] {
    return testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", sim_->port(), "/health"))
               .status == 200;
  }));
  ASSERT_EQ(Run(RunArgs(100)), 0) << err_;
  EXPECT_EQ(Manifest()["counts"]["failed"], 0);
  ExpectEachAnsweredOnce(100);
}

TEST_F(EndpointDownTest, APlainWebServerIsRefusedBeforeAnyQuestion) {
  sim::SimOptions o;
  o.endpoint_faults.html_404 = true;
  Serve(o);
  EXPECT_EQ(Run(RunArgs(10)), 2) << err_;
  EXPECT_TRUE(absl::StrContains(
      err_, absl::StrCat("this is not an OpenAI-compatible API at ", Url(), ": GET ", Url(),
                         "/models answered HTTP 404, 404 Not Found")))
      << err_;
  EXPECT_EQ(Stats()["requests"], 0);  // no chat request
  EXPECT_FALSE(PathExists(tmp_ / "results/medeval-sim/manifest.json"));
}

TEST_F(EndpointDownTest, ARedirectIsNamedNotFollowed) {
  sim::SimOptions o;
  o.endpoint_faults.redirect_to = "https://api.example.com";
  Serve(o);
  EXPECT_EQ(Run(RunArgs(10)), 2) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "redirected (HTTP 301) to https://api.example.com/v1/models"))
      << err_;
  EXPECT_TRUE(absl::StrContains(err_, "pass --base-url https://api.example.com/v1")) << err_;
}

TEST_F(EndpointDownTest, AModelTheServerDoesNotListIsWarnedAbout) {
  Serve(sim::SimOptions());
  std::vector<std::string> args = RunArgs(5);
  args[4] = "not-listed";
  ASSERT_EQ(Run(args), 0) << err_;
  EXPECT_TRUE(
      absl::StrContains(err_, "warning: not-listed: the model 'not-listed' is not among those " +
                                  Url() + " lists (medeval-sim)"))
      << err_;
}

TEST_F(EndpointDownTest, ARevokedKeyMidRunSavesEveryAnswerReceived) {
  sim::SimOptions o;
  o.latency_ms = 150;
  o.jitter_sigma = 0.6;
  o.endpoint_faults.unauthorized_after = 30;
  Serve(o);
  EXPECT_EQ(Run(RunArgs(100, {"--workers", "1", "--concurrency", "8"})), 1) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "HTTP 401")) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "answers this worker received are saved")) << err_;
  const int received = Stats()["completed"].get<int>();
  EXPECT_GT(received, 30) << "requests in flight at the 401 were answered too";
  EXPECT_TRUE(absl::StrContains(err_, absl::StrCat(received, " answers are saved"))) << err_;

  // With a good key again, nothing the server answered is asked (and paid) again.
  ASSERT_EQ(sim_->Control(R"({"unauthorized_after": -1})"), "");
  ASSERT_EQ(Run(RunArgs(100)), 0) << err_;
  ExpectEachAnsweredOnce(100);
}

// Distributed: the worker's /readyz, its metrics and `medeval status` say
// the endpoint is down and why; the run simply waits.
TEST_F(EndpointDownTest, ADistributedWorkerShowsTheEndpointDownAndWaits) {
  sim::SimOptions o;
  o.latency_ms = 20;
  o.down_after = 20;
  o.down_for = absl::Seconds(4);
  Serve(o);
  testing::Cluster cluster(tmp_.path());
  const int wport = testing::FreePort();
  cluster.StartCoordinator();
  cluster.StartWorker(
      "w1", {"--model", "medeval-sim", "--base-url", Url(), "--concurrency", "4",
             "--endpoint-probe-max", "1", "--metrics-listen", absl::StrCat("127.0.0.1:", wport)});
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", 60);
  std::string out, err;
  ASSERT_EQ(cluster.Cli({"submit", "--data", tmp_ / "suite", "--model", "medeval-sim",
                         "--max-attempts", "1"},
                        &out, &err),
            0)
      << err;
  const std::string run(absl::StripAsciiWhitespace(out));
  auto ready = [&] {
    return testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", wport, "/readyz"));
  };
  // (503 at start-up says "not connected"; wait for the endpoint's reason.)
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = ready();
        return r.status == 503 && absl::StrContains(r.body, "endpoint down since");
      },
      absl::Seconds(20)));
  EXPECT_TRUE(absl::StrContains(ready().body, "endpoint down since")) << ready().body;
  EXPECT_TRUE(absl::StrContains(ready().body, "probing every")) << ready().body;
  const std::string metrics =
      testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", wport, "/metrics")).body;
  EXPECT_EQ(PromValue(metrics, "medeval_endpoint_down"), 1) << metrics;
  ASSERT_EQ(cluster.Cli({"status"}, &out, &err), 0) << err;
  EXPECT_TRUE(absl::StrContains(out, "endpoint down since")) << out;
  // Back up: the run finishes with nothing failed (one attempt each!).
  ASSERT_TRUE(cluster.WaitRunFinished(run, absl::Seconds(60)));
  auto st = cluster.client().Status(run, absl::Seconds(5));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->runs(0).answered(), 60u);
  EXPECT_EQ(st->runs(0).failed(), 0u);
  EXPECT_EQ(testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", wport, "/readyz")).status,
            200);
}

TEST_F(EndpointDownTest, ProbeTellsWhetherAnEndpointCanServeARun) {
  sim::SimOptions o;
  o.style.reasoning_field = true;
  Serve(o);
  std::string out, err;
  ASSERT_EQ(testing::RunMedeval({"probe", "--base-url", Url(), "--model", "medeval-sim"},
                                tmp_.path(), &out, &err),
            0)
      << out << err;
  for (const char* line :
       {"reachable, OpenAI-compatible API     pass", "model listed                         pass",
        "answers a question                   pass", "temperature 0 accepted               pass",
        "streaming                            pass", "latency, 1 in flight                 pass",
        "latency, 8 in flight                 pass", "latency, 32 in flight                pass",
        "largest max_tokens accepted          pass   16384"}) {
    EXPECT_TRUE(absl::StrContains(out, line)) << line << "\n" << out;
  }
  EXPECT_TRUE(absl::StrContains(out, "reasoning apart in a field")) << out;
  EXPECT_TRUE(absl::StrContains(out, "ready: everything a run needs passed")) << out;
  // 1 + 1 + 1 + 1 + (1 + 8 + 32) + 1 chat requests: real ones.
  EXPECT_EQ(Stats()["requests"], 45);
}

TEST_F(EndpointDownTest, ProbeFailsOnAWebServerAndAnUnlistedModelIsAWarning) {
  sim::SimOptions o;
  o.endpoint_faults.html_404 = true;
  Serve(o);
  std::string out, err;
  EXPECT_EQ(testing::RunMedeval({"probe", "--base-url", Url(), "--model", "medeval-sim"},
                                tmp_.path(), &out, &err),
            1);
  EXPECT_TRUE(absl::StrContains(out,
                                "reachable, OpenAI-compatible API     FAIL   this is not an "
                                "OpenAI-compatible API"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "not ready")) << out;

  ASSERT_EQ(sim_->Control(R"({"html_404": 0})"), "");
  EXPECT_EQ(testing::RunMedeval({"probe", "--base-url", Url(), "--model", "other"}, tmp_.path(),
                                &out, &err),
            0)
      << out;
  EXPECT_TRUE(absl::StrContains(out, "model listed                         warn")) << out;
}

}  // namespace
}  // namespace medeval
