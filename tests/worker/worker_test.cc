// The worker against a coordinator played by a real gRPC server on loopback
// (the test decides what the coordinator sends) and the simulated model
// server.
#include "worker/worker.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/url.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using Stream = grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>;

// A coordinator whose Work stream runs `script` (on the gRPC thread) while a
// reader counts what the worker sends.
class ScriptedCoordinator final : public v1::Coordinator::Service {
 public:
  using Script = std::function<void(Stream*)>;
  explicit ScriptedCoordinator(Script script) : script_(std::move(script)) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~ScriptedCoordinator() override {
    Done();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }
  int heartbeats() const { return heartbeats_.load(); }
  int hellos() const { return hellos_.load(); }

  grpc::Status Work(grpc::ServerContext* ctx, Stream* stream) override {
    std::thread reader([this, stream] {
      v1::WorkerMessage m;
      while (stream->Read(&m)) {
        if (m.has_hello()) hellos_.fetch_add(1);
        if (m.has_heartbeat()) heartbeats_.fetch_add(1);
      }
    });
    script_(stream);
    // Keep the stream open until the worker goes.
    while (!ctx->IsCancelled() && !done_.HasBeenNotified()) {
      done_.WaitForNotificationWithTimeout(absl::Milliseconds(50));
    }
    ctx->TryCancel();
    reader.join();
    return grpc::Status::OK;
  }
  void Done() {
    if (!done_.HasBeenNotified()) done_.Notify();
  }

 private:
  Script script_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<int> heartbeats_{0};
  std::atomic<int> hellos_{0};
  absl::Notification done_;
};

// The gRPC client contexts alive in this process: one per call. Their
// destruction can be slowed, which widens the window in which a call outlives
// what its owner believes.
class ClientContexts final : public grpc::ClientContext::GlobalCallbacks {
 public:
  // Installed once per process (gRPC allows no more), before the first call.
  static ClientContexts* Get() {
    static ClientContexts* const contexts = [] {
      auto* c = new ClientContexts;
      grpc::ClientContext::SetGlobalCallbacks(c);
      return c;
    }();
    return contexts;
  }
  void DefaultConstructor(grpc::ClientContext* c) override {
    absl::MutexLock lock(&mu_);
    live_.insert(c);
  }
  void Destructor(grpc::ClientContext* c) override {
    if (slow_.load()) absl::SleepFor(absl::Milliseconds(300));
    absl::MutexLock lock(&mu_);
    live_.erase(c);
  }
  int live() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(live_.size());
  }
  void set_slow(bool slow) { slow_ = slow; }

 private:
  absl::Mutex mu_;
  std::set<grpc::ClientContext*> live_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> slow_{false};
};

v1::CoordinatorMessage Welcome(int heartbeat_ms) {
  v1::CoordinatorMessage m;
  m.mutable_welcome()->set_worker_id("w");
  m.mutable_welcome()->set_heartbeat_interval_ms(heartbeat_ms);
  return m;
}

TEST(WorkerTest, HeartbeatsWaitForTheirIntervalNotForEveryWakeUp) {
  ScriptedCoordinator coord([](Stream* s) {
    s->Write(Welcome(1000));
    // A busy coordinator: many messages, each of which wakes the worker.
    const absl::Time end = absl::Now() + absl::Milliseconds(2500);
    for (int i = 0; absl::Now() < end; ++i) {
      v1::CoordinatorMessage m;
      v1::QuestionKey* k = m.add_acks();
      k->set_run_id("r");
      k->set_index(i);
      if (!s->Write(m)) return;
      absl::SleepFor(absl::Milliseconds(2));
    }
  });
  WorkerOptions o;
  o.coordinator = coord.target();
  o.name = "hb";
  o.model = "m";
  o.backend.endpoint = *ParseEndpoint("http://127.0.0.1:1/v1");
  Worker w(o);
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return coord.hellos() == 1; }, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(2500));
  const int beats = coord.heartbeats();
  w.Stop();
  coord.Done();
  // One a second (and some slack for a loaded machine), not one per message.
  EXPECT_GE(beats, 1);
  EXPECT_LE(beats, 4);
}

TEST(WorkerTest, StopReturnsOnlyOnceItsStreamIsGone) {
  ClientContexts* contexts = ClientContexts::Get();
  ScriptedCoordinator coord([](Stream* s) { s->Write(Welcome(5000)); });
  WorkerOptions o;
  o.coordinator = coord.target();
  o.name = "gone";
  o.model = "m";
  o.backend.endpoint = *ParseEndpoint("http://127.0.0.1:1/v1");
  auto w = std::make_unique<Worker>(o);
  ASSERT_TRUE(w->Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return coord.hellos() == 1; }, absl::Seconds(10)));
  ASSERT_EQ(contexts->live(), 1);
  // The stream's last reaction takes its time to release the call.
  contexts->set_slow(true);
  w->Stop();
  const int live_after_stop = contexts->live();
  contexts->set_slow(false);
  // Before the fix Stop returned as soon as the stream said it was done, and
  // the stream then released its call (and the channel reference its context
  // holds) on a gRPC thread. When the worker had meanwhile dropped its own
  // reference, the channel died there and shut down gRPC's callback queue
  // from one of that queue's own threads: an abort in ref_counted.h.
  EXPECT_EQ(live_after_stop, 0);
  w.reset();
  coord.Done();
}

TEST(WorkerTest, StopReturnsOnlyOnceNoBackendCallbackRuns) {
  sim::SimServer sim((sim::SimOptions()));
  ASSERT_TRUE(sim.Start().ok());
  ScriptedCoordinator coord([](Stream* s) {
    v1::CoordinatorMessage m = Welcome(5000);
    v1::RunInfo* run = m.add_runs();
    run->set_run_id("r");
    run->set_model("medeval-sim");
    run->mutable_params()->set_timeout_s(30);
    run->mutable_params()->set_max_attempts(1);
    v1::Lease* l = m.add_leases();
    l->set_lease_id(7);
    l->mutable_key()->set_run_id("r");
    l->set_dataset("D");
    l->set_line(1);
    l->set_question("问题 1：请解释。");
    s->Write(m);
  });
  std::atomic<bool> entered{false};
  std::atomic<bool> left{false};
  WorkerOptions o;
  o.coordinator = coord.target();
  o.name = "teardown";
  o.model = "medeval-sim";
  o.backend.endpoint = *ParseEndpoint(absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"));
  // The transfer completes while the worker stops: its callback is still
  // running (inside the backend) when Stop is called.
  o.on_attempt_done = [&](const AttemptReport&) {
    entered = true;
    absl::SleepFor(absl::Milliseconds(800));
    left = true;
  };
  auto w = std::make_unique<Worker>(o);
  ASSERT_TRUE(w->Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return entered.load(); }, absl::Seconds(20)));
  w->Stop();
  coord.Done();
  // Before the fix Stop returned while the callback still ran, and the
  // destructor then destroyed the backend under it.
  EXPECT_TRUE(left.load());
  w.reset();
}

}  // namespace
}  // namespace medeval
