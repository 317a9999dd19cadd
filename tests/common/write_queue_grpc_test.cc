// WriteQueue on a real gRPC callback stream over loopback: a Work-stream
// server reactor that writes the way the coordinator's does (StartWrite with
// what Next returns, WriteDone from OnWriteDone, all under the reactor's
// mutex), fed by many threads at once while the client reads slowly or goes
// away mid-stream.
//
// No test here waits on the clock: the client's slowness is an event (it
// starts reading only once half the messages are queued) and HTTP/2 flow
// control does the rest. With bandwidth-delay probing off, the stream's window
// stays at its 64 KiB default, so writes stall until the client reads and what
// queues behind them must merge. The deadlines only turn a hang into a
// failure.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/write_queue.h"
#include "gtest/gtest.h"
#include "proto/medeval.grpc.pb.h"

namespace medeval {
namespace {

constexpr int kProducers = 8;
constexpr int kPerProducer = 300;
constexpr int kPushes = kProducers * kPerProducer;
// 1 KiB a message: 2.4 MB in all, far more than the 64 KiB stream window.
constexpr size_t kPadding = 1024;
// Only a hang reaches these.
constexpr absl::Duration kEventTimeout = absl::Seconds(20);

// What the reactor did, counted under its mutex.
struct WriteStats {
  int writes = 0;                // StartWrite calls
  int max_in_flight = 0;         // writes started and not yet done, at most
  int failed_writes = 0;         // OnWriteDone(false)
  int writes_after_failure = 0;  // StartWrite once a write had failed
};

// The server end of one Work stream. Send may run on any thread; the stream
// finishes on Close once no write is in flight. The service owns it (not
// itself, as the coordinator's do), so that a failed test can still finish
// it: a server shuts down only once every stream has finished.
class QueuedWriter : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage> {
 public:
  QueuedWriter() { StartRead(&in_); }

  void Send(v1::CoordinatorMessage msg, bool by_copy) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (by_copy) {
      writes_.Push(msg);  // the worker's way (Push of a const reference)
    } else {
      writes_.Push(std::move(msg));  // the coordinator's way
    }
    MaybeWriteLocked();
  }

  void Close() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    MaybeWriteLocked();
  }

  // Finishes now, write in flight or not: for a test that failed.
  void FinishNow() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status(grpc::StatusCode::ABORTED, "the test failed"));
  }

  WriteStats stats() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

  bool AwaitFailedWrite(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto failed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stats_.failed_writes > 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&failed), timeout);
  }

  // The client sends nothing; a failed read means it went away, which the
  // writes see for themselves.
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    --in_flight_;
    if (!ok) ++stats_.failed_writes;
    writes_.WriteDone(ok);
    MaybeWriteLocked();
  }

  void OnDone() override { done_.Notify(); }

  bool AwaitDone(absl::Duration timeout) { return done_.WaitForNotificationWithTimeout(timeout); }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writes_.busy() || finished_) return;
    if (v1::CoordinatorMessage* out = writes_.Next()) {
      ++stats_.writes;
      if (stats_.failed_writes > 0) ++stats_.writes_after_failure;
      stats_.max_in_flight = std::max(stats_.max_in_flight, ++in_flight_);
      StartWrite(out);
      return;
    }
    if (closing_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  absl::Notification done_;
  v1::WorkerMessage in_;
  absl::Mutex mu_;
  WriteQueue<v1::CoordinatorMessage> writes_ ABSL_GUARDED_BY(mu_);
  WriteStats stats_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Serves one Work call with a QueuedWriter, which it keeps.
class OneStreamService final : public v1::Coordinator::CallbackService {
 public:
  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Work(
      grpc::CallbackServerContext*) override {
    writer_ = std::make_unique<QueuedWriter>();
    started_.Notify();
    return writer_.get();
  }

  // The writer, once the call has reached the server.
  QueuedWriter* AwaitWriter() {
    return started_.WaitForNotificationWithTimeout(kEventTimeout) ? writer_.get() : nullptr;
  }
  QueuedWriter* writer() { return started_.HasBeenNotified() ? writer_.get() : nullptr; }

 private:
  absl::Notification started_;
  std::unique_ptr<QueuedWriter> writer_;  // set before started_ is notified
};

v1::CoordinatorMessage Item(int producer, int seq) {
  v1::CoordinatorMessage m;
  v1::Lease* l = m.add_leases();
  l->set_lease_id(static_cast<uint64_t>(seq));
  l->mutable_key()->set_run_id(absl::StrCat("p", producer));
  l->mutable_key()->set_index(static_cast<uint32_t>(seq));
  l->set_question(std::string(kPadding, 'q'));
  return m;
}

// Pushes kPerProducer items from each of kProducers threads at once, half of
// them by copy and half by move; `half` is notified once half of all pushes
// are queued.
void PushFromManyThreads(QueuedWriter* writer, absl::Notification* half) {
  std::atomic<int> pushed{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([=, &pushed] {
      for (int seq = 0; seq < kPerProducer; ++seq) {
        writer->Send(Item(p, seq), /*by_copy=*/p % 2 == 0);
        if (pushed.fetch_add(1) + 1 == kPushes / 2) half->Notify();
      }
    });
  }
  for (std::thread& t : producers) t.join();
}

// What the client read: each producer's sequence numbers in arrival order.
struct Received {
  std::map<std::string, std::vector<uint32_t>> by_producer;
  int messages = 0;
};

void Collect(const v1::CoordinatorMessage& m, Received* r) {
  ++r->messages;
  for (const v1::Lease& l : m.leases()) {
    r->by_producer[l.key().run_id()].push_back(l.key().index());
  }
}

class WriteQueueGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    grpc::ChannelArguments args;
    // The stream window stays at 64 KiB (probing would grow it), so writes
    // stall behind a client that does not read.
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetMaxReceiveMessageSize(-1);  // a merged message carries everything
    stub_ = v1::Coordinator::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args));
  }
  void TearDown() override {
    if (QueuedWriter* w = service_.writer()) w->FinishNow();  // when a test failed
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  OneStreamService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(WriteQueueGrpcTest, ManyThreadsPushingReachASlowReaderOnceInOrderAndMerged) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub_->Work(&ctx);
  QueuedWriter* writer = service_.AwaitWriter();
  ASSERT_NE(writer, nullptr);

  absl::Notification half;
  Received got;
  grpc::Status status;
  // The slow reader: nothing until half the messages are queued, then all.
  std::thread reader([&] {
    half.WaitForNotificationWithTimeout(kEventTimeout);
    v1::CoordinatorMessage m;
    while (stream->Read(&m)) Collect(m, &got);
    status = stream->Finish();
  });
  PushFromManyThreads(writer, &half);
  writer->Close();  // finishes once the last write is done
  reader.join();
  ASSERT_TRUE(writer->AwaitDone(kEventTimeout)) << "the stream never ended";
  const WriteStats stats = writer->stats();

  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(got.by_producer.size(), static_cast<size_t>(kProducers));
  std::vector<uint32_t> all_in_order(kPerProducer);
  for (int i = 0; i < kPerProducer; ++i) all_in_order[i] = static_cast<uint32_t>(i);
  for (const auto& [producer, seqs] : got.by_producer) {
    EXPECT_EQ(seqs, all_in_order) << producer << ": each item once, in the order pushed";
  }
  EXPECT_EQ(got.messages, stats.writes);
  EXPECT_EQ(stats.max_in_flight, 1);
  EXPECT_EQ(stats.failed_writes, 0);
  // Until the reader started, the window let at most ~64 of the first 1200
  // pushes out one by one: the rest had to merge.
  EXPECT_LT(stats.writes, kPushes) << "nothing merged";
  std::cout << kPushes << " pushes went out in " << stats.writes << " writes\n";
}

TEST_F(WriteQueueGrpcTest, AWriteFailedByTheClientCancellingStopsTheWrites) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub_->Work(&ctx);
  QueuedWriter* writer = service_.AwaitWriter();
  ASSERT_NE(writer, nullptr);

  // Everything is queued; the window holds all but the first writes back.
  absl::Notification half;
  PushFromManyThreads(writer, &half);
  Received got;
  v1::CoordinatorMessage m;
  ASSERT_TRUE(stream->Read(&m));
  Collect(m, &got);
  // Whatever write is in flight now cannot finish: it or the next (the
  // merged rest, megabytes) waits for a window the client never opens.
  ctx.TryCancel();
  ASSERT_TRUE(writer->AwaitFailedWrite(kEventTimeout)) << "no write failed";

  // More pushes from several threads after the failure: queued, not written.
  const int writes_at_failure = writer->stats().writes;
  std::vector<std::thread> late;
  for (int p = 0; p < 4; ++p) {
    late.emplace_back([=] {
      for (int seq = 0; seq < 50; ++seq) writer->Send(Item(100 + p, seq), p % 2 == 0);
    });
  }
  for (std::thread& t : late) t.join();
  EXPECT_EQ(writer->stats().writes, writes_at_failure);

  writer->Close();
  ASSERT_TRUE(writer->AwaitDone(kEventTimeout)) << "the stream hung after the failed write";
  const WriteStats stats = writer->stats();
  EXPECT_EQ(stats.failed_writes, 1);
  EXPECT_EQ(stats.writes_after_failure, 0);
  EXPECT_EQ(stats.max_in_flight, 1);

  while (stream->Read(&m)) Collect(m, &got);
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // What did arrive came once and in order.
  for (const auto& [producer, seqs] : got.by_producer) {
    for (size_t i = 0; i < seqs.size(); ++i) {
      EXPECT_EQ(seqs[i], i) << producer;
    }
  }
}

}  // namespace
}  // namespace medeval
