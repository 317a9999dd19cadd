// Results are accepted only from the holder of a lease on that stream, and
// a worker gets no more than it may hold: hand-made gRPC messages against a
// real coordinator on loopback.
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "tests/coordinator/live_coordinator.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using testing::LiveCoordinator;
using testing::RawWorker;

class LeaseHolderTest : public ::testing::Test {
 protected:
  std::string Submit(int n, const std::string& model = "m") {
    ++suites_;
    auto resp = live_.SubmitSynthetic(tmp_ / absl::StrCat("suite", suites_), n, model,
                                      absl::StrCat("key", suites_));
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->run_id() : "";
  }
  testing::TempDir tmp_;
  LiveCoordinator live_{tmp_ / "state"};
  int suites_ = 0;
};

TEST_F(LeaseHolderTest, AResultCountsOnlyFromTheLeaseHolderAndNamesItsStream) {
  const std::string run = Submit(3);
  RawWorker a(live_.stub(), LiveCoordinator::Hello("a", "m", 1));
  auto leases = a.ReadLeases(1);
  ASSERT_EQ(leases.size(), 1u);
  const v1::Lease lease = leases[0];
  RawWorker b(live_.stub(), LiveCoordinator::Hello("b", "other-model", 4));

  // A question nobody leased, from a worker of the run's model.
  v1::Lease never = lease;
  never.set_lease_id(lease.lease_id() + 1000);
  never.mutable_key()->set_index((lease.key().index() + 1) % 3);
  ASSERT_TRUE(a.Send(LiveCoordinator::Answer(never, "injected")));
  // A's lease, answered by a worker registered for another model.
  ASSERT_TRUE(b.Send(LiveCoordinator::Answer(lease, "stolen")));
  // Refused results are acknowledged (so the sender forgets them), not kept.
  ASSERT_TRUE(a.ReadAcks(1));
  ASSERT_TRUE(b.ReadAcks(1));
  EXPECT_EQ(live_.RunStatus(run).answered(), 0u);

  // The holder answers everything, claiming to be someone else.
  std::vector<v1::Lease> todo = {lease};
  int answered = 0;
  while (answered < 3) {
    if (todo.empty()) {
      todo = a.ReadLeases(1);
      ASSERT_FALSE(todo.empty());
    }
    ASSERT_TRUE(a.Send(LiveCoordinator::Answer(todo.back(), "<A>", "forged-name")));
    todo.pop_back();
    ++answered;
  }
  ASSERT_TRUE(testing::WaitFor([&] { return live_.RunStatus(run).state() == "done"; }));
  EXPECT_EQ(live_.RunStatus(run).answered(), 3u);
  auto files = ListFilesRecursive(tmp_ / "state/runs");
  ASSERT_TRUE(files.ok());
  int records = 0;
  for (const std::string& f : *files) {
    if (!absl::EndsWith(f, "records.jsonl")) continue;
    for (const auto& rec : testing::ReadJsonl(JoinPath(tmp_ / "state/runs", f))) {
      EXPECT_EQ(rec["worker"], "a") << rec.dump();
      EXPECT_NE(rec["answer"], "injected");
      EXPECT_NE(rec["answer"], "stolen");
      ++records;
    }
  }
  EXPECT_EQ(records, 3);
  EXPECT_EQ(live_.coordinator().scheduler().counters().unleased_results, 2u);
}

TEST_F(LeaseHolderTest, AHelloGetsBackAtMostWhatItMayHaveInFlight) {
  const std::string run = Submit(20);
  v1::WorkerMessage hello = LiveCoordinator::Hello("greedy", "m", 1);
  for (uint32_t i = 0; i < 20; ++i) {
    v1::QuestionKey* k = hello.mutable_hello()->add_holding();
    k->set_run_id(run);
    k->set_index(i);
  }
  RawWorker greedy(live_.stub(), hello);
  v1::CoordinatorMessage welcome;
  ASSERT_TRUE(greedy.Read(&welcome));
  ASSERT_TRUE(welcome.has_welcome());
  EXPECT_EQ(live_.RunStatus(run).leased(), 1u);
  // The others are for the other workers.
  RawWorker other(live_.stub(), LiveCoordinator::Hello("other", "m", 8));
  EXPECT_EQ(other.ReadLeases(8).size(), 8u);
}

TEST_F(LeaseHolderTest, ASecondWorkerWithTheSameNameIsRefusedNotSwapped) {
  const std::string run = Submit(4);
  RawWorker first(live_.stub(), LiveCoordinator::Hello("dup", "m", 1, "process-1"));
  auto leases = first.ReadLeases(1);
  ASSERT_EQ(leases.size(), 1u);
  {
    RawWorker second(live_.stub(), LiveCoordinator::Hello("dup", "m", 1, "process-2"));
    grpc::Status st = second.Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "already connected")) << st.error_message();
    EXPECT_TRUE(absl::StrContains(st.error_message(), "--name")) << st.error_message();
  }
  // The first keeps its stream and its lease.
  ASSERT_TRUE(first.Send(LiveCoordinator::Answer(leases[0], "<A>")));
  ASSERT_TRUE(first.ReadAcks(1));
  EXPECT_EQ(live_.RunStatus(run).answered(), 1u);
  // The same process reconnecting replaces its old stream.
  RawWorker again(live_.stub(), LiveCoordinator::Hello("dup", "m", 1, "process-1"));
  v1::CoordinatorMessage welcome;
  ASSERT_TRUE(again.Read(&welcome));
  EXPECT_TRUE(welcome.has_welcome());
  EXPECT_EQ(first.Finish().error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(LeaseHolderTest, AnswersSentAgainWithTheHelloOfAReconnectCount) {
  const std::string run = Submit(2);
  v1::Lease lease;
  {
    RawWorker w(live_.stub(), LiveCoordinator::Hello("w", "m", 1));
    auto leases = w.ReadLeases(1);
    ASSERT_EQ(leases.size(), 1u);
    lease = leases[0];
    w.context().TryCancel();  // the connection breaks before the answer goes out
  }
  ASSERT_TRUE(testing::WaitFor([&] { return live_.RunStatus(run).leased() == 0; }));
  v1::WorkerMessage hello = LiveCoordinator::Hello("w", "m", 1);
  hello.MergeFrom(LiveCoordinator::Answer(lease, "<A>"));
  RawWorker back(live_.stub(), hello);
  ASSERT_TRUE(back.ReadAcks(1));
  EXPECT_EQ(live_.RunStatus(run).answered(), 1u);
}

TEST_F(LeaseHolderTest, StatusPrintsNamesAndErrorsWithControlCharactersEscaped) {
  RawWorker evil(live_.stub(), LiveCoordinator::Hello("evil\x1b[2J\rname", "m\x1b", 1));
  v1::CoordinatorMessage welcome;
  ASSERT_TRUE(evil.Read(&welcome));
  v1::WorkerMessage err;
  err.mutable_error()->set_message(
      "\x1b]0;pwned\x07 \xc2\x9b"
      "31m bad key");
  ASSERT_TRUE(evil.Send(err));
  ASSERT_TRUE(testing::WaitFor([&] {
    auto st = live_.client().Status("");
    return st.ok() && st->workers_size() == 1 && !st->workers(0).error().empty();
  }));
  std::string out, errout;
  ASSERT_EQ(
      testing::RunMedeval({"status", "--coordinator", live_.target()}, tmp_.path(), &out, &errout),
      0)
      << errout;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x07'), std::string::npos) << out;
  EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos) << out;
  EXPECT_TRUE(absl::StrContains(out, "evil\\x1b[2J\\x0dname")) << out;
  EXPECT_TRUE(absl::StrContains(out, "\\x1b]0;pwned\\x07")) << out;
}

}  // namespace
}  // namespace medeval
