#include "sim/batching_engine.h"

#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace medeval::sim {
namespace {

// What a closed loop of `concurrency` clients measures: each sends its next
// request as soon as the previous one is answered.
struct Load {
  double per_s = 0;      // requests finished per second
  double latency_s = 0;  // mean time from Add to finish
  uint64_t preemptions = 0;
};

// Runs the engine on a fake clock (the sum of the step durations) for
// `span`, measuring after the first quarter so the start-up burst is left out.
Load ClosedLoop(const EngineOptions& o, int concurrency, int64_t prompt, int64_t completion,
                absl::Duration span = absl::Seconds(60)) {
  BatchingEngine engine(o);
  absl::Duration now;
  std::map<uint64_t, absl::Duration> started;
  uint64_t next = 0;
  auto add = [&] {
    EXPECT_TRUE(engine.Add(next, prompt, completion).ok());
    started[next++] = now;
  };
  for (int i = 0; i < concurrency; ++i) add();
  const absl::Duration warm = span / 4;
  int64_t done = 0;
  absl::Duration latency;
  uint64_t preemptions_at_warm = 0;
  bool warmed = false;
  while (now < span) {
    const absl::Duration d = engine.BeginStep();
    EXPECT_GT(d, absl::ZeroDuration());
    now += d;
    if (!warmed && now >= warm) {
      warmed = true;
      preemptions_at_warm = engine.stats().preemptions;
    }
    for (uint64_t id : engine.EndStep()) {
      if (warmed) {
        ++done;
        latency += now - started[id];
      }
      started.erase(id);
      add();
    }
  }
  Load l;
  l.per_s = static_cast<double>(done) / absl::ToDoubleSeconds(span - warm);
  l.latency_s = done > 0 ? absl::ToDoubleSeconds(latency) / static_cast<double>(done) : 0;
  l.preemptions = engine.stats().preemptions - preemptions_at_warm;
  return l;
}

TEST(BatchingEngineTest, ThroughputPeaksAtAKneeAndFallsPastItWithPreemption) {
  EngineOptions o;  // the defaults: the knee of `medeval sim --profile batching`
  o.preempt = true;
  std::map<int, Load> at;
  for (int n : {8, 16, 32, 64, 128, 256}) {
    at[n] = ClosedLoop(o, n, /*prompt=*/300, /*completion=*/256);
    SCOPED_TRACE(n);
  }
  for (const auto& [n, l] : at) {
    std::cout << "  " << n << " in flight: " << l.per_s << " requests/s, mean latency "
              << l.latency_s << " s, " << l.preemptions << " preemptions\n";
  }
  // A bigger batch is faster per token while everything fits...
  EXPECT_LT(at[8].per_s * 1.3, at[16].per_s);
  EXPECT_LT(at[16].per_s * 1.2, at[32].per_s);
  EXPECT_EQ(at[8].preemptions, 0u);
  EXPECT_EQ(at[32].preemptions, 0u);
  double best = 0;
  int best_n = 0;
  for (const auto& [n, l] : at) {
    if (l.per_s > best) best = l.per_s, best_n = n;
  }
  EXPECT_GE(best_n, 32);
  EXPECT_LE(best_n, 96);
  // ...and past the knee the engine thrashes: less throughput, far more latency.
  EXPECT_LT(at[256].per_s, 0.75 * best);
  EXPECT_LT(at[128].per_s, best);
  EXPECT_GT(at[256].preemptions, 0u);
  EXPECT_GT(at[256].latency_s, 4 * at[32].latency_s);
  // Per-request latency near the knee is what a real server shows.
  EXPECT_GT(at[32].latency_s, 0.5);
  EXPECT_LT(at[64].latency_s, 2.5);
}

TEST(BatchingEngineTest, WithoutPreemptionThroughputLevelsOffAndRequestsQueue) {
  EngineOptions o;
  o.preempt = false;
  o.step_ms_per_queued = 0;  // the cache alone
  const Load knee = ClosedLoop(o, 64, 300, 256);
  const Load past = ClosedLoop(o, 256, 300, 256);
  EXPECT_EQ(past.preemptions, 0u);
  // The cache holds 32768 / 556 = 58 whole sequences: more clients only wait.
  EXPECT_NEAR(past.per_s, knee.per_s, 0.05 * knee.per_s);
  EXPECT_GT(past.latency_s, 3 * knee.latency_s);
  // The waiting requests' overhead makes an overloaded server slower.
  o.step_ms_per_queued = 0.02;
  EXPECT_LT(ClosedLoop(o, 256, 300, 256).per_s, 0.8 * past.per_s);
}

TEST(BatchingEngineTest, QueuesWhatDoesNotFitInTheCacheInArrivalOrder) {
  EngineOptions o;
  o.kv_tokens = 10 * (100 + 20);
  o.preempt = false;
  BatchingEngine engine(o);
  for (uint64_t i = 0; i < 15; ++i) ASSERT_TRUE(engine.Add(i, 100, 20).ok());
  ASSERT_GT(engine.BeginStep(), absl::ZeroDuration());
  EXPECT_EQ(engine.stats().running, 10);
  EXPECT_EQ(engine.stats().queued, 5);
  EXPECT_EQ(engine.stats().kv_tokens_used, 10 * 100);
  EXPECT_TRUE(engine.EndStep().empty());
  EXPECT_EQ(engine.stats().kv_tokens_used, 10 * 101);
  std::vector<uint64_t> order;
  for (int step = 1; step < 20; ++step) {
    engine.BeginStep();
    EXPECT_EQ(engine.stats().running, 10) << "nothing is admitted while the cache is reserved";
    for (uint64_t id : engine.EndStep()) order.push_back(id);
  }
  ASSERT_EQ(order.size(), 10u);
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(order[i], i);
  engine.BeginStep();
  EXPECT_EQ(engine.stats().running, 5) << "the queued five, once the first ten are done";
  EXPECT_EQ(engine.stats().queued, 0);
  EXPECT_EQ(engine.stats().preemptions, 0u);
}

TEST(BatchingEngineTest, PrefillCostIsPaidInTheStepThatAdmits) {
  EngineOptions o;
  o.step_ms = 2;
  o.step_ms_per_seq = 0.5;
  o.step_ms_per_queued = 0;
  o.prefill_ms_per_1k_tokens = 10;
  BatchingEngine engine(o);
  ASSERT_TRUE(engine.Add(1, 3000, 3).ok());
  EXPECT_EQ(engine.BeginStep(), absl::Milliseconds(2 + 0.5 + 30));
  EXPECT_TRUE(engine.EndStep().empty());
  EXPECT_EQ(engine.BeginStep(), absl::Milliseconds(2.5));
  EXPECT_TRUE(engine.EndStep().empty());
  ASSERT_TRUE(engine.Add(2, 500, 1).ok());
  EXPECT_EQ(engine.BeginStep(), absl::Milliseconds(2 + 1 + 5)) << "two running, 500 prefilled";
  EXPECT_EQ(engine.EndStep(), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(engine.idle());
  EXPECT_EQ(engine.BeginStep(), absl::ZeroDuration());
  EXPECT_EQ(engine.stats().prefill_tokens, 3500u);
  EXPECT_EQ(engine.stats().decode_tokens, 4u);
}

TEST(BatchingEngineTest, OverflowPreemptsTheNewestWhichStartsOverAtTheQueueFront) {
  EngineOptions o;
  o.kv_tokens = 30;
  o.preempt = true;
  o.step_ms_per_queued = 0;
  BatchingEngine engine(o);
  ASSERT_TRUE(engine.Add(1, 10, 15).ok());
  ASSERT_TRUE(engine.Add(2, 10, 15).ok());
  ASSERT_TRUE(engine.Add(3, 9, 2).ok());
  // Admitted optimistically: both prompts and this step's tokens fit now
  // (3 would not: 10 + 10 + 9 + 3 > 30).
  engine.BeginStep();
  EXPECT_EQ(engine.stats().running, 2);
  engine.EndStep();
  for (int i = 0; i < 4; ++i) {
    engine.BeginStep();
    engine.EndStep();
  }
  EXPECT_EQ(engine.stats().kv_tokens_used, 30) << "5 tokens each generated: the cache is full";
  EXPECT_EQ(engine.stats().preemptions, 0u);
  engine.BeginStep();  // two more tokens do not fit: 2, the newest, goes
  EXPECT_EQ(engine.stats().preemptions, 1u);
  EXPECT_EQ(engine.stats().running, 1);
  EXPECT_EQ(engine.stats().queued, 2) << "2 back at the front, before 3";
  EXPECT_EQ(engine.stats().kv_tokens_used, 15);
  engine.EndStep();
  std::vector<uint64_t> order;
  while (!engine.idle()) {
    engine.BeginStep();
    for (uint64_t id : engine.EndStep()) order.push_back(id);
    ASSERT_LE(engine.stats().kv_tokens_used, 30);
  }
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order.front(), 1u);
  const EngineStats s = engine.stats();
  EXPECT_EQ(s.finished, 3u);
  EXPECT_EQ(s.admitted, 3u + s.preemptions) << "every preempted sequence is admitted again";
  // Preempted work is done again: prompts prefilled and tokens generated twice.
  EXPECT_GT(s.prefill_tokens, 10u + 10u + 9u);
  EXPECT_GT(s.decode_tokens, 15u + 15u + 2u);
}

TEST(BatchingEngineTest, RefusesWhatCanNeverFitAndRunsALoneSequenceAfterTheCacheShrinks) {
  EngineOptions o;
  o.kv_tokens = 100;
  o.preempt = true;
  BatchingEngine engine(o);
  absl::Status st = engine.Add(1, 90, 20);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("maximum context length is 100"), std::string::npos);
  ASSERT_TRUE(engine.Add(2, 50, 40).ok());
  engine.BeginStep();
  engine.EndStep();
  o.kv_tokens = 20;  // smaller than the sequence already running
  engine.set_options(o);
  int steps = 1;
  while (!engine.idle() && steps < 1000) {
    engine.BeginStep();
    engine.EndStep();
    ++steps;
  }
  EXPECT_EQ(steps, 40) << "the last sequence running is never preempted";
  EXPECT_EQ(engine.stats().preemptions, 0u);
}

}  // namespace
}  // namespace medeval::sim
