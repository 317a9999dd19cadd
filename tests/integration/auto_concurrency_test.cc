// `--concurrency auto` end to end: a coordinator and two worker processes in
// front of one simulated endpoint. The model's limit rises while the
// endpoint's throughput does, and falls for both workers when one of them
// gets 429s; `status` shows the limit and why.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

class AutoConcurrencyTest : public ::testing::Test {
 protected:
  void Serve(sim::SimOptions o) {
    sim_ = std::make_unique<sim::SimServer>(o);
    ASSERT_TRUE(sim_->Start().ok());
  }
  std::vector<std::string> WorkerArgs() {
    return {"--model",           "m",
            "--base-url",        absl::StrCat("http://127.0.0.1:", sim_->port(), "/v1"),
            "--concurrency",     "auto",
            "--max-concurrency", "128",
            "--retry-base-ms",   "10"};
  }
  // Submits `n` questions to two auto workers and watches the run's status
  // until it is finished: every limit seen, with its cause.
  struct Seen {
    std::vector<std::pair<uint32_t, std::string>> limits;
    uint32_t max_share = 0;
    std::string status_text;  // `medeval status RUN` while running
  };
  Seen RunAndWatch(int n) {
    Seen seen;
    testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", n);
    cluster_.StartCoordinator({"--concurrency-window", "0.5"});
    cluster_.StartWorker("w1", WorkerArgs());
    cluster_.StartWorker("w2", WorkerArgs());
    std::string out, err;
    EXPECT_EQ(cluster_.Cli({"submit", "--data", tmp_ / "suite", "--model", "m"}, &out, &err), 0)
        << err;
    const std::string run(absl::StripAsciiWhitespace(out));
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (absl::Now() < deadline) {
      auto st = cluster_.client().Status(run);
      if (!st.ok() || st->runs().empty()) break;
      const v1::RunStatus& r = st->runs(0);
      if (r.state() != "running") break;
      if (r.concurrency_limit() > 0 &&
          (seen.limits.empty() || seen.limits.back().first != r.concurrency_limit())) {
        seen.limits.emplace_back(r.concurrency_limit(), r.concurrency_cause());
        if (seen.status_text.empty() && r.answered() > 0) {
          cluster_.Cli({"status", run}, &seen.status_text, &err);
        }
      }
      for (const v1::WorkerStatus& w : st->workers()) {
        seen.max_share = std::max(seen.max_share, w.concurrency());
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_TRUE(cluster_.WaitRunFinished(run));
    auto st = cluster_.client().Status(run);
    EXPECT_TRUE(st.ok());
    if (st.ok()) {
      EXPECT_EQ(st->runs(0).answered(), static_cast<uint64_t>(n));
      EXPECT_EQ(st->runs(0).failed(), 0u);
    }
    return seen;
  }
  static std::string Describe(const Seen& s) {
    std::string out;
    for (const auto& [l, why] : s.limits) absl::StrAppend(&out, l, " (", why, ") ");
    return out;
  }

  testing::TempDir tmp_;
  testing::Cluster cluster_{tmp_.path()};
  std::unique_ptr<sim::SimServer> sim_;
};

TEST_F(AutoConcurrencyTest, RisesWhileTheEndpointAnswersFasterWithMoreInFlight) {
  sim::SimOptions o;
  o.latency_ms = 300;  // unlimited capacity: throughput grows with what is in flight
  Serve(o);
  const Seen seen = RunAndWatch(3000);
  ASSERT_FALSE(seen.limits.empty());
  // 16 per worker to start. The status poll may see the model's limit
  // after one worker has joined and before the other has (16, then 32):
  // what counts is that the start ends at 32 before slow start raises it.
  uint32_t start_top = 0;
  for (const auto& [l, why] : seen.limits) {
    if (why != "start") break;
    EXPECT_EQ(l % 16, 0u) << Describe(seen);
    start_top = l;
  }
  EXPECT_EQ(start_top, 32u) << Describe(seen);
  uint32_t top = 0;
  bool slow_start = false;
  for (const auto& [l, why] : seen.limits) {
    top = std::max(top, l);
    slow_start = slow_start || why == "slow_start";
  }
  EXPECT_GE(top, 128u) << Describe(seen);
  EXPECT_TRUE(slow_start) << Describe(seen);
  EXPECT_GE(seen.max_share, 64u);
  EXPECT_TRUE(absl::StrContains(seen.status_text, "in flight (")) << seen.status_text;
}

TEST_F(AutoConcurrencyTest, BothWorkersBackOffWhenTheApiAnswers429) {
  sim::SimOptions o;
  o.latency_ms = 200;
  o.rate_limit_rps = 20;  // 4 in flight fill it
  o.retry_after_s = 1;
  Serve(o);
  const Seen seen = RunAndWatch(300);
  bool backed_off = false;
  for (size_t i = 1; i < seen.limits.size(); ++i) {
    if (seen.limits[i].second == "rate_limited" &&
        seen.limits[i].first < seen.limits[i - 1].first) {
      backed_off = true;
    }
  }
  EXPECT_TRUE(backed_off) << Describe(seen);
  EXPECT_LT(seen.limits.back().first, 32u) << Describe(seen);
}

}  // namespace
}  // namespace medeval
