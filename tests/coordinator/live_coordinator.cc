#include "tests/coordinator/live_coordinator.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/grpc_util.h"
#include "gtest/gtest.h"

namespace medeval::testing {

RawWorker::RawWorker(v1::Coordinator::Stub* stub, const v1::WorkerMessage& first,
                     absl::Duration deadline) {
  ctx_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
  rw_ = stub->Work(&ctx_);
  rw_->Write(first);
}

void RawWorker::Note(const v1::CoordinatorMessage& m) {
  acks_ += m.acks_size();
  for (const auto& l : m.leases()) leases_.push_back(l);
}

std::vector<v1::Lease> RawWorker::ReadLeases(size_t n) {
  const size_t start = leases_.size();
  v1::CoordinatorMessage m;
  while (leases_.size() - start < n && rw_->Read(&m)) Note(m);
  return std::vector<v1::Lease>(leases_.begin() + static_cast<long>(start), leases_.end());
}

bool RawWorker::ReadAcks(int n) {
  v1::CoordinatorMessage m;
  while (acks_ < n) {
    if (!rw_->Read(&m)) return false;
    Note(m);
  }
  return true;
}

grpc::Status RawWorker::Finish() {
  rw_->WritesDone();
  v1::CoordinatorMessage m;
  while (rw_->Read(&m)) Note(m);
  return rw_->Finish();
}

LiveCoordinator::LiveCoordinator(const std::string& state_dir, Coordinator::Options o)
    : state_dir_(state_dir), options_(std::move(o)) {
  options_.state_dir = state_dir_;
  options_.listen = "127.0.0.1:0";
  auto c = Coordinator::Start(options_);
  EXPECT_TRUE(c.ok()) << c.status();
  coordinator_ = std::move(*c);
  Connect();
}

void LiveCoordinator::Connect() {
  auto channel = MakeChannel(target(), ClientSecurity{});
  stub_ = v1::Coordinator::NewStub(*channel);
  client_ = std::move(*CoordinatorClient::Connect(target(), ClientSecurity{}));
}

void LiveCoordinator::Restart() {
  coordinator_.reset();
  auto c = Coordinator::Start(options_);
  EXPECT_TRUE(c.ok()) << c.status();
  coordinator_ = std::move(*c);
  Connect();
}

std::string LiveCoordinator::target() const {
  return absl::StrCat("127.0.0.1:", coordinator_->port());
}

absl::StatusOr<v1::SubmitResponse> LiveCoordinator::SubmitSynthetic(const std::string& dir, int n,
                                                                    const std::string& model,
                                                                    const std::string& key) {
  WriteSyntheticSuite(dir, "D", n);
  auto suite = LoadSuite(dir, LoadOptions());
  if (!suite.ok()) return suite.status();
  v1::RunSpec spec;
  spec.set_model(model);
  spec.set_track("v4-llm");
  spec.set_idempotency_key(key);
  return client_->Submit(spec, *suite);
}

v1::RunStatus LiveCoordinator::RunStatus(const std::string& run_id) {
  auto st = client_->Status(run_id);
  EXPECT_TRUE(st.ok()) << st.status();
  if (!st.ok() || st->runs_size() != 1) return v1::RunStatus();
  return st->runs(0);
}

int LiveCoordinator::RunCount() {
  auto st = client_->Status("");
  EXPECT_TRUE(st.ok()) << st.status();
  return st.ok() ? st->runs_size() : -1;
}

std::vector<std::string> LiveCoordinator::RunFolders() {
  auto names = ListDir(JoinPath(state_dir_, "runs"));
  return names.ok() ? *names : std::vector<std::string>();
}

v1::WorkerMessage LiveCoordinator::Hello(const std::string& name, const std::string& model,
                                         int inflight, const std::string& instance) {
  v1::WorkerMessage m;
  v1::Hello* h = m.mutable_hello();
  h->set_worker_name(name);
  h->set_model(model);
  h->set_max_inflight(inflight);
  h->set_instance_id(instance);
  return m;
}

v1::WorkerMessage LiveCoordinator::Answer(const v1::Lease& l, const std::string& text,
                                          const std::string& worker) {
  v1::WorkerMessage m;
  v1::Result* r = m.add_results();
  r->set_lease_id(l.lease_id());
  *r->mutable_key() = l.key();
  r->mutable_answer()->set_answer(text);
  r->mutable_answer()->set_attempts(1);
  if (!worker.empty()) r->mutable_answer()->set_worker(worker);
  return m;
}

}  // namespace medeval::testing
