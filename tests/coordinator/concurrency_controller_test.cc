#include "coordinator/concurrency_controller.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "gtest/gtest.h"

namespace medeval {
namespace {

// What an endpoint does with `limit` requests in flight.
struct Behaviour {
  double answers_per_s;
  double latency_s;
  bool rate_limited = false;
};
using Endpoint = std::function<Behaviour(int limit)>;

// Continuous batching: each engine step serves every running sequence and
// takes longer as the batch grows; past the KV-cache budget sequences are
// preempted and recomputed, so throughput falls while latency soars.
Behaviour Batching(int limit) {
  const double knee = 64;
  double latency = 1.0 + 0.01 * limit;
  if (limit > knee) latency = (1.0 + 0.01 * knee) * std::pow(limit / knee, 2.0);
  return {limit / latency, latency};
}

// A server that serves 16 at once and queues the rest.
Behaviour Queue(int limit) {
  const double capacity = 16;
  return {std::min<double>(limit, capacity), std::max(1.0, limit / capacity)};
}

// A hosted API: 20 answers/s, then 429s.
Behaviour Hosted(int limit) {
  const double rate = 20;
  return {std::min<double>(limit, rate), 1.0, limit > rate * 1.1};
}

double Best(const Endpoint& e) {
  double best = 0;
  for (int l = 1; l <= 256; ++l) best = std::max(best, e(l).answers_per_s);
  return best;
}

class Driver {
 public:
  explicit Driver(Endpoint e, ConcurrencyController::Options o = {})
      : endpoint_(std::move(e)), now_(absl::UnixEpoch()), c_(o, now_) {}
  // One window; returns the throughput it had.
  double Window() {
    const Behaviour b = endpoint_(c_.limit());
    const int answers = static_cast<int>(std::lround(b.answers_per_s * 5));
    for (int i = 0; i < answers; ++i) c_.OnAnswer(absl::Seconds(b.latency_s), 100);
    if (b.rate_limited) c_.OnRateLimited();
    now_ += absl::Seconds(5);
    c_.Tick(now_);
    return b.rate_limited ? 0 : b.answers_per_s;  // a 429 storm is no throughput
  }
  double Average(int windows) {
    double sum = 0;
    for (int i = 0; i < windows; ++i) sum += Window();
    return sum / windows;
  }
  ConcurrencyController& c() { return c_; }
  absl::Time now() const { return now_; }

 private:
  Endpoint endpoint_;
  absl::Time now_;
  ConcurrencyController c_;
};

TEST(ConcurrencyControllerTest, RisesQuicklyWhileThroughputRises) {
  Driver d(Batching);
  EXPECT_EQ(d.c().limit(), 8);
  for (int i = 0; i < 3; ++i) d.Window();
  EXPECT_GE(d.c().limit(), 32) << d.c().reason();
}

TEST(ConcurrencyControllerTest, SettlesNearTheBestOfEachProfile) {
  for (const auto& [name, e] : std::vector<std::pair<std::string, Endpoint>>{
           {"batching", Batching}, {"queue", Queue}, {"hosted", Hosted}}) {
    Driver d(e);
    d.Average(20);  // finding it
    const double got = d.Average(40);
    EXPECT_GE(got, 0.9 * Best(e)) << name << ": limit " << d.c().limit() << " (" << d.c().reason()
                                  << ")";
  }
}

TEST(ConcurrencyControllerTest, BacksOffWhenLatencyGrowsWithoutThroughput) {
  Driver d(Queue);
  d.Average(40);
  // Past the server's 16 only the queue (latency) grows.
  EXPECT_LE(d.c().limit(), 24) << d.c().reason();
  EXPECT_GE(d.c().limit(), 14) << d.c().reason();
}

TEST(ConcurrencyControllerTest, BacksOffOnA429AndOnTimeoutsAndStaysBelowThatPoint) {
  ConcurrencyController::Options o;
  o.initial = 40;
  ConcurrencyController c(o, absl::UnixEpoch());
  c.OnRateLimited();
  EXPECT_TRUE(c.Tick(absl::UnixEpoch() + absl::Seconds(5)));
  EXPECT_EQ(c.limit(), 28);
  EXPECT_NE(c.reason().find("429"), std::string::npos) << c.reason();
  c.OnTimeout();
  EXPECT_TRUE(c.Tick(absl::UnixEpoch() + absl::Seconds(10)));
  EXPECT_EQ(c.limit(), 19);
  EXPECT_NE(c.reason().find("timed out"), std::string::npos) << c.reason();
  // Climbing back, it stops below the point of the last loss.
  absl::Time t = absl::UnixEpoch() + absl::Seconds(10);
  for (int i = 0; i < 20; ++i) {
    for (int a = 0; a < 5 * c.limit(); ++a) c.OnAnswer(absl::Seconds(1), 10);
    t += absl::Seconds(5);
    c.Tick(t);
    EXPECT_LT(c.limit(), 28) << c.reason();
  }
}

TEST(ConcurrencyControllerTest, AWindowNotYetOverOrWithTooFewAnswersChangesNothing) {
  ConcurrencyController c({}, absl::UnixEpoch());
  c.OnAnswer(absl::Seconds(1), 10);
  EXPECT_FALSE(c.Tick(absl::UnixEpoch() + absl::Seconds(1)));
  EXPECT_FALSE(c.Tick(absl::UnixEpoch() + absl::Seconds(6)));  // one answer: says nothing
  EXPECT_EQ(c.limit(), 8);
}

TEST(ConcurrencyControllerTest, StaysWithinItsBounds) {
  ConcurrencyController::Options o;
  o.max = 32;
  Driver d(Batching, o);
  for (int i = 0; i < 30; ++i) {
    d.Window();
    EXPECT_LE(d.c().limit(), 32);
    EXPECT_GE(d.c().limit(), 1);
  }
}

TEST(ConcurrencyControllerTest,
     WorkersJoiningBeforeTheFirstJudgementAddTheirShareAndLeavingLowersTheCeiling) {
  ConcurrencyController::Options o;
  o.initial = 16;
  o.max = 64;
  ConcurrencyController c(o, absl::UnixEpoch());
  c.set_max(128);
  c.OnWorkerJoined(16);
  EXPECT_EQ(c.limit(), 32);
  EXPECT_STREQ(c.cause(), "start");
  // Once a window was judged, a newcomer only raises the ceiling.
  for (int i = 0; i < 100; ++i) c.OnAnswer(absl::Seconds(1), 10);
  ASSERT_TRUE(c.Tick(absl::UnixEpoch() + absl::Seconds(5)));
  EXPECT_EQ(c.limit(), 64);
  EXPECT_STREQ(c.cause(), "slow_start");
  c.OnWorkerJoined(16);
  EXPECT_EQ(c.limit(), 64);
  c.set_max(40);  // workers left
  EXPECT_EQ(c.limit(), 40);
}

}  // namespace
}  // namespace medeval
