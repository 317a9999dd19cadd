// The scheduler's auto concurrency: one controller per model endpoint, fed
// by every auto worker of the model, its limit split among them and carried
// to each worker as a share that also bounds the leases it holds.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "coordinator/scheduler.h"
#include "gtest/gtest.h"
#include "tests/coordinator/scheduler_fixture.h"

namespace medeval {
namespace {

class SchedulerConcurrencyTest : public SchedulerTest {
 protected:
  std::string ConnectAuto(RecordingChannel* ch, const std::string& name, int max) {
    v1::Hello h;
    h.set_worker_name(name);
    h.set_model("m");
    h.set_max_inflight(max);
    h.set_auto_concurrency(true);
    auto id = s_->Connect(h, ch);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  }
  // The last share the worker was told, or 0.
  static uint32_t Share(RecordingChannel& ch) {
    uint32_t share = 0;
    ch.Count([&](const v1::CoordinatorMessage& m) {
      if (m.has_concurrency()) share = m.concurrency().limit();
      return 0;
    });
    return share;
  }
  // Answers every lease the worker holds (as an endpoint would at that
  // concurrency), then the window closes.
  void AnswerAll(const std::string& w, RecordingChannel& ch, std::vector<v1::Lease>* held) {
    for (const v1::Lease& l : ch.TakeLeases()) held->push_back(l);
    for (const v1::Lease& l : *held) {
      v1::WorkerMessage m = Answer(l);
      m.mutable_results(0)->mutable_answer()->set_latency_s(1.0);
      Deliver(w, &ch, m);
    }
    held->clear();
  }
};

TEST_F(SchedulerConcurrencyTest, TheModelsLimitIsSharedByItsAutoWorkersAndBoundsTheirLeases) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 500)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  ConnectAuto(&a, "a", 64);
  ConnectAuto(&b, "b", 64);
  // Each started with 16 (the old fixed default), so the model has 32.
  journal_.Flush();
  EXPECT_EQ(Share(a), 16u);
  EXPECT_EQ(Share(b), 16u);
  EXPECT_EQ(RunStatus("r1").concurrency_limit(), 32u);
  // Leases: the share plus a local queue of a quarter of it.
  EXPECT_EQ(a.TakeLeases().size(), 20u);
  EXPECT_EQ(b.TakeLeases().size(), 20u);
  v1::StatusResponse st = s_->Status("");
  for (const v1::WorkerStatus& w : st.workers()) EXPECT_EQ(w.concurrency(), 16u);
}

TEST_F(SchedulerConcurrencyTest, RisesWhileThroughputRisesAndBacksOffOn429s) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 5000)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  const std::string wa = ConnectAuto(&a, "a", 256);
  const std::string wb = ConnectAuto(&b, "b", 256);
  std::vector<v1::Lease> held_a, held_b;
  // An endpoint whose throughput grows with what is in flight: every lease
  // is answered within the window. Slow start doubles the limit.
  AnswerAll(wa, a, &held_a);
  AnswerAll(wb, b, &held_b);
  clock_.Advance(absl::Seconds(5));
  s_->Tick();
  EXPECT_EQ(RunStatus("r1").concurrency_limit(), 64u);
  EXPECT_EQ(RunStatus("r1").concurrency_cause(), "slow_start");
  EXPECT_EQ(Share(a), 32u);
  EXPECT_EQ(Share(b), 32u);
  AnswerAll(wa, a, &held_a);
  AnswerAll(wb, b, &held_b);
  clock_.Advance(absl::Seconds(5));
  s_->Tick();
  EXPECT_EQ(RunStatus("r1").concurrency_limit(), 128u);
  EXPECT_EQ(Share(a), 64u);

  // One worker's requests come back 429: the whole model backs off.
  v1::WorkerMessage load;
  load.mutable_load()->set_rate_limited(3);
  Deliver(wa, &a, load);
  clock_.Advance(absl::Seconds(5));
  s_->Tick();
  const v1::RunStatus r = RunStatus("r1");
  EXPECT_EQ(r.concurrency_limit(), 89u);  // x0.7
  EXPECT_EQ(r.concurrency_cause(), "rate_limited");
  EXPECT_TRUE(absl::StrContains(r.concurrency_reason(), "429")) << r.concurrency_reason();
  EXPECT_EQ(Share(a) + Share(b), 89u);
}

TEST_F(SchedulerConcurrencyTest, AWorkerThatLeavesOrGoesDownHandsItsShareToTheOthers) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 500)).ok());
  RecordingChannel& a = NewChannel();
  RecordingChannel& b = NewChannel();
  ConnectAuto(&a, "a", 64);
  const std::string wb = ConnectAuto(&b, "b", 64);
  ASSERT_EQ(Share(a), 16u);
  v1::WorkerMessage down;
  down.mutable_endpoint_state()->set_down(true);
  down.mutable_endpoint_state()->set_reason("connection refused");
  Deliver(wb, &b, down);
  s_->Tick();
  EXPECT_EQ(Share(a), 32u);
  s_->Disconnect(wb, &b);
  s_->Tick();
  EXPECT_EQ(Share(a), 32u);
  // The ceiling is what the remaining workers may have: a's 64.
  RecordingChannel& c = NewChannel();
  ConnectAuto(&c, "c", 8);
  s_->Tick();
  EXPECT_EQ(Share(c), 8u);  // its own ceiling, whatever its half would be
}

TEST_F(SchedulerConcurrencyTest, WorkersWithAFixedConcurrencyKeepIt) {
  Start();
  ASSERT_TRUE(s_->AddRun(MakeRun("r1", "m", 100)).ok());
  RecordingChannel& ch = NewChannel();
  Connect(&ch, "fixed", "m", 4, 2);
  EXPECT_EQ(ch.TakeLeases().size(), 6u);
  EXPECT_EQ(Share(ch), 0u);
  EXPECT_EQ(RunStatus("r1").concurrency_limit(), 0u);
}

}  // namespace
}  // namespace medeval
