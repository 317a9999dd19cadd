// The Scheduler's test fixture: a scheduler with a fake clock and a real
// journal, and workers' streams that record what the scheduler sends them.
// Shared by the scheduler's tests (scheduler_test.cc and its concurrency
// tests).
#ifndef MEDEVAL_TESTS_COORDINATOR_SCHEDULER_FIXTURE_H_
#define MEDEVAL_TESTS_COORDINATOR_SCHEDULER_FIXTURE_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "coordinator/scheduler.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {

// Stands in for a worker's gRPC stream: records what the scheduler sends.
class RecordingChannel : public WorkerChannel {
 public:
  void Send(v1::CoordinatorMessage m) override {
    std::lock_guard<std::mutex> lock(mu_);
    msgs_.push_back(std::move(m));
  }
  void Close(const absl::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    close_status_ = s;
  }
  // Leases received since the last call.
  std::vector<v1::Lease> TakeLeases() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<v1::Lease> out;
    for (size_t i = leases_seen_; i < msgs_.size(); ++i) {
      for (const auto& l : msgs_[i].leases()) out.push_back(l);
    }
    leases_seen_ = msgs_.size();
    return out;
  }
  int Count(const std::function<int(const v1::CoordinatorMessage&)>& f) {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto& m : msgs_) n += f(m);
    return n;
  }
  int Acks() {
    return Count([](const auto& m) { return m.acks_size(); });
  }
  int RunInfos() {
    return Count([](const auto& m) { return m.runs_size(); });
  }
  std::vector<uint64_t> Cancels() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> out;
    for (const auto& m : msgs_) out.insert(out.end(), m.cancels().begin(), m.cancels().end());
    return out;
  }
  bool closed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  absl::Status close_status() {
    std::lock_guard<std::mutex> lock(mu_);
    return close_status_;
  }

 private:
  std::mutex mu_;
  std::vector<v1::CoordinatorMessage> msgs_;
  size_t leases_seen_ = 0;
  bool closed_ = false;
  absl::Status close_status_;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void Start(Scheduler::Options o = Scheduler::Options()) {
    o.clock = &clock_;
    o.on_run_complete = [this](const std::string& id) {
      std::lock_guard<std::mutex> lock(mu_);
      completed_.push_back(id);
    };
    s_ = std::make_unique<Scheduler>(o, &journal_);
  }

  LoadedRun MakeRun(const std::string& id, const std::string& model, int n) {
    std::string root = dir_ / id;
    std::string lines;
    for (int i = 0; i < n; ++i) {
      absl::StrAppend(&lines, R"({"question": "q)", i, R"(", "answer": "", "other": {"id": )", i,
                      "}}\n");
    }
    testing::WriteText(JoinPath(root, "D.jsonl"), lines);
    LoadedRun r;
    r.spec.set_run_id(id);
    r.spec.set_model(model);
    r.spec.set_track("v4-llm");
    r.spec.set_idempotency_key(absl::StrCat("key-", id));
    auto suite = LoadSuite(root, LoadOptions());
    EXPECT_TRUE(suite.ok());
    r.suite = std::make_shared<const Suite>(std::move(*suite));
    r.journal = *JournalFile::Create(dir_ / (id + ".journal"), id);
    r.state.assign(n, kPending);
    r.offset.assign(n, 0);
    r.output_dir = dir_ / (id + ".out");
    return r;
  }

  std::string Connect(RecordingChannel* ch, const std::string& name, const std::string& model,
                      int inflight, int prefetch = 0, std::vector<v1::QuestionKey> holding = {}) {
    v1::Hello h;
    h.set_worker_name(name);
    h.set_model(model);
    h.set_max_inflight(inflight);
    h.set_prefetch(prefetch);
    for (auto& k : holding) *h.add_holding() = k;
    auto id = s_->Connect(h, ch);
    EXPECT_TRUE(id.ok()) << id.status();
    return *id;
  }

  void Deliver(const std::string& worker, RecordingChannel* ch, v1::WorkerMessage m) {
    s_->OnMessage(worker, ch, &m);
  }
  static v1::WorkerMessage Answer(const v1::Lease& l, const std::string& text = "A") {
    v1::WorkerMessage m;
    v1::Result* r = m.add_results();
    r->set_lease_id(l.lease_id());
    *r->mutable_key() = l.key();
    r->mutable_answer()->set_answer(text);
    r->mutable_answer()->set_attempts(1);
    return m;
  }
  static v1::WorkerMessage Fail(const v1::Lease& l) {
    v1::WorkerMessage m;
    v1::Result* r = m.add_results();
    r->set_lease_id(l.lease_id());
    *r->mutable_key() = l.key();
    r->mutable_failure()->set_last_error("HTTP 400: too long");
    r->mutable_failure()->set_attempts(1);
    return m;
  }
  static v1::WorkerMessage CancelledCopy(const v1::Lease& l, uint32_t sent) {
    v1::WorkerMessage m;
    v1::CancelledCopy* c = m.add_cancelled();
    c->set_lease_id(l.lease_id());
    c->set_attempts_sent(sent);
    return m;
  }
  v1::RunStatus RunStatus(const std::string& id) {
    journal_.Flush();
    return s_->Status(id).runs(0);
  }
  std::vector<std::string> Completed() {
    journal_.Flush();
    std::lock_guard<std::mutex> lock(mu_);
    return completed_;
  }

  // Workers' channels stay valid until the scheduler and journal are gone
  // (as streams do until Disconnect), so they are declared first.
  RecordingChannel& NewChannel() {
    channels_.push_back(std::make_unique<RecordingChannel>());
    return *channels_.back();
  }
  std::vector<std::unique_ptr<RecordingChannel>> channels_;
  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Scheduler> s_;
  // Declared after the scheduler so it drains (calling back into it) first.
  JournalWriter journal_;
  std::mutex mu_;
  std::vector<std::string> completed_;
};

}  // namespace medeval

#endif  // MEDEVAL_TESTS_COORDINATOR_SCHEDULER_FIXTURE_H_
