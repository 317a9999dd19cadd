// What the user sees of a coordinator's runs: `status` and `submit --wait`
// say when no worker serves a run's model, `submit`'s Ctrl-C says the runs go
// on, and `status --json` prints numbers as numbers. Real processes.
#include <signal.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

TEST(UserViewTest, StatusAndSubmitWaitSayWhenNoWorkerServesTheModel) {
  testing::TempDir tmp;
  testing::Cluster cluster(tmp / "cluster");
  cluster.StartCoordinator();
  std::string out, err;
  ASSERT_EQ(
      cluster.Cli({"submit", "--data", testing::SamplesDir(), "--model", "lonely"}, &out, &err), 0)
      << err;
  const std::string run(absl::StripAsciiWhitespace(out));

  ASSERT_EQ(cluster.Cli({"status"}, &out, &err), 0) << err;
  EXPECT_TRUE(absl::StrContains(out, "no worker for model lonely has connected")) << out;
  EXPECT_TRUE(absl::StrContains(out, "medeval worker --model lonely")) << out;

  ASSERT_EQ(cluster.Cli({"status", "--json"}, &out, &err), 0) << err;
  json j = json::parse(out);
  ASSERT_EQ(j["runs"].size(), 1u);
  EXPECT_TRUE(j["runs"][0]["total"].is_number()) << j["runs"][0].dump();
  EXPECT_EQ(j["runs"][0]["total"], 43);
  EXPECT_TRUE(j["runs"][0]["created_unix_ms"].is_number());
  EXPECT_TRUE(j["runs"][0]["answered"].is_number());

  testing::Subprocess wait;
  wait.Start({testing::MedevalBinary(), "submit", "--data", testing::SamplesDir(), "--model",
              "lonely", "--wait", "--out", tmp / "out", "--coordinator", cluster.target()},
             tmp.path());
  ASSERT_TRUE(testing::WaitFor(
      [&] { return absl::StrContains(wait.err(), "no worker for model lonely has connected"); },
      absl::Seconds(30)))
      << wait.err();
  wait.Kill(SIGINT);
  EXPECT_EQ(wait.Wait(absl::Seconds(30)), 130) << wait.err();
  EXPECT_TRUE(absl::StrContains(wait.err(), "the runs go on at the coordinator")) << wait.err();
  EXPECT_TRUE(absl::StrContains(wait.err(), "goes on at the coordinator")) << wait.err();
  EXPECT_FALSE(absl::StrContains(wait.err(), "Run the same command again")) << wait.err();
}

int ConnectedWorkers(testing::Cluster& cluster) {
  std::string out, err;
  if (cluster.Cli({"status", "--json"}, &out, &err) != 0) return -1;
  json j = json::parse(out, nullptr, false);
  int n = 0;
  if (j.is_object()) {
    for (const auto& w : j["workers"]) n += w["connected"].get<bool>() ? 1 : 0;
  }
  return n;
}

TEST(UserViewTest, WorkersReconnectToARestartedCoordinatorWithinItsGrace) {
  testing::TempDir tmp;
  sim::SimServer sim{sim::SimOptions()};
  ASSERT_TRUE(sim.Start().ok());
  testing::Cluster cluster(tmp / "cluster");
  cluster.StartCoordinator();
  const int metrics_port = testing::FreePort();
  cluster.StartWorker(
      "w1", {"--model", "m", "--base-url", absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"),
             "--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port)});
  ASSERT_TRUE(testing::WaitFor([&] { return ConnectedWorkers(cluster) == 1; }));
  auto reconnects = [&] {
    auto r = testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", metrics_port, "/metrics"));
    return testing::PromValue(r.body, "medeval_worker_reconnects_total").value_or(-1);
  };
  EXPECT_EQ(reconnects(), 0);

  // Down long enough for every back-off to grow, then back on the same port.
  cluster.KillCoordinator(SIGKILL);
  cluster.WaitCoordinator();
  absl::SleepFor(absl::Seconds(10));
  cluster.StartCoordinator();  // start-up grace: 5 s
  ASSERT_TRUE(testing::WaitFor([&] { return ConnectedWorkers(cluster) == 1; }, absl::Seconds(30)));
  // The back-off grew while the coordinator was down, but never past 2 s:
  // a restarted coordinator sees the worker again within its grace. Read
  // from the waits the worker chose (its log), not from how fast this
  // machine ran them.
  const std::string log = cluster.worker("w1").err();
  int waits = 0;
  for (size_t at = log.find("reconnecting in "); at != std::string::npos;
       at = log.find("reconnecting in ", at + 1)) {
    const size_t begin = at + strlen("reconnecting in ");
    const std::string word = log.substr(begin, log.find_first_of(" \n", begin) - begin);
    absl::Duration wait;
    ASSERT_TRUE(absl::ParseDuration(word, &wait)) << word;
    EXPECT_LE(wait, absl::Seconds(2)) << "a wait past the coordinator's grace: " << word;
    ++waits;
  }
  EXPECT_GE(waits, 3) << log;
  // Many attempts while it was down; one reconnection.
  EXPECT_EQ(reconnects(), 1);
}

}  // namespace
}  // namespace medeval
