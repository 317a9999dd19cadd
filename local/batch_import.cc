#include "local/batch_import.h"

#include <deque>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/run_folder.h"
#include "common/cost.h"
#include "common/file_util.h"
#include "local/batch_export.h"
#include "local/embedded_cluster.h"
#include "worker/batch_format.h"

namespace medeval {
namespace {

constexpr char kImporterName[] = "batch-import";

// A worker inside the coordinator's process: leases in, answers from the
// result lines out, through the scheduler like any worker's.
class FileAnswerer final : public WorkerChannel {
 public:
  FileAnswerer(Scheduler* scheduler, absl::flat_hash_map<std::string, BatchLineResult> results,
               std::string source)
      : scheduler_(scheduler), results_(std::move(results)), source_(std::move(source)) {}
  ~FileAnswerer() override { Stop(); }

  absl::Status Start(const std::string& model) {
    v1::Hello hello;
    hello.set_worker_name(kImporterName);
    hello.set_model(model);
    hello.set_max_inflight(1024);
    hello.set_endpoint(source_);
    auto id = scheduler_->Connect(hello, this);
    if (!id.ok()) return id.status();
    id_ = *id;
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
    if (!id_.empty()) scheduler_->Disconnect(id_, this);
  }

  // Called with the scheduler's mutex held: only queue.
  void Send(v1::CoordinatorMessage msg) override {
    absl::MutexLock lock(&mu_);
    inbox_.push_back(std::move(msg));
  }
  void Close(const absl::Status&) override {}

 private:
  void Loop() {
    while (true) {
      std::deque<v1::CoordinatorMessage> msgs;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !inbox_.empty();
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(2));
        if (stopping_) return;
        msgs.swap(inbox_);
      }
      v1::WorkerMessage reply;
      reply.mutable_heartbeat();  // silence would cost the leases
      for (const v1::CoordinatorMessage& m : msgs) {
        for (const v1::Lease& lease : m.leases()) *reply.add_results() = Answer(lease);
      }
      scheduler_->OnMessage(id_, this, &reply);
    }
  }

  v1::Result Answer(const v1::Lease& lease) {
    v1::Result r;
    r.set_lease_id(lease.lease_id());
    *r.mutable_key() = lease.key();
    const std::string id = QuestionCustomId(lease.dataset(), lease.line());
    const int64_t now = absl::ToUnixMillis(absl::Now());
    auto it = results_.find(id);
    v1::AnswerRecord rec;
    if (it != results_.end() && it->second.answered) {
      rec = it->second.record;
      rec.add_flags(kFlagBatch);
    } else {
      rec.set_last_error(it == results_.end()
                             ? absl::StrCat("no result for custom_id ", id, " in ", source_)
                             : absl::StrCat("batch line failed: ", it->second.error));
    }
    rec.set_attempts(1);
    rec.set_worker(kImporterName);
    rec.set_endpoint(source_);
    rec.set_started_unix_ms(now);
    rec.set_finished_unix_ms(now);
    if (it != results_.end() && it->second.answered) {
      *r.mutable_answer() = std::move(rec);
    } else {
      *r.mutable_failure() = std::move(rec);
    }
    return r;
  }

  Scheduler* const scheduler_;
  const absl::flat_hash_map<std::string, BatchLineResult> results_;
  const std::string source_;
  std::string id_;
  absl::Mutex mu_;
  std::deque<v1::CoordinatorMessage> inbox_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace

int RunBatchImport(const BatchImportOptions& o, std::ostream& out, std::ostream& err) {
  int code = kJobOk;
  auto suite = LoadSuiteForRun(o.suite, err, &code);
  if (!suite.ok()) {
    err << "medeval: " << suite.status().message() << "\n";
    return code;
  }
  absl::flat_hash_set<std::string> known;
  for (const Dataset& ds : suite->datasets) {
    for (size_t i = 0; i < ds.size(); ++i) known.insert(QuestionCustomId(ds.file.name, ds.line(i)));
  }
  // Every line is checked before anything is journaled.
  absl::flat_hash_map<std::string, BatchLineResult> results;
  std::vector<std::string> problems;
  for (const std::string& path : o.results) {
    auto text = ReadFile(path);
    if (!text.ok()) {
      err << "medeval: " << text.status().message() << "\n";
      return kJobBadInput;
    }
    std::vector<absl::string_view> lines = SplitLines(*text);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (IsBlankLine(lines[i])) continue;
      auto r = ParseBatchResultLine(lines[i]);
      if (!r.ok()) {
        problems.push_back(absl::StrCat(path, ":", i + 1, ": ", r.status().message()));
        continue;
      }
      if (!known.contains(r->custom_id)) {
        problems.push_back(absl::StrCat(path, ":", i + 1, ": custom_id '", r->custom_id,
                                        "' is not a question of this suite"));
        continue;
      }
      auto [it, inserted] = results.try_emplace(r->custom_id, *r);
      if (!inserted && !it->second.answered) it->second = std::move(*r);  // an answer wins
    }
  }
  if (!problems.empty()) {
    for (const std::string& p : problems) err << p << "\n";
    err << "medeval: " << problems.size() << " unusable result lines; nothing was imported\n";
    return kJobBadInput;
  }
  v1::RunSpec spec =
      MakeRunSpec(*suite, o.model, o.params, o.limits, o.suite, o.allow_incomplete_zip);
  *spec.mutable_price() = o.price;
  // The folder is checked as `run` checks it, before anything is journaled.
  absl::Status st = CheckResultFolder(*suite, spec, o.out_dir, o.replace, err);
  if (!st.ok()) {
    err << "medeval: " << st.message() << "\n";
    return kJobBadInput;
  }
  EmbeddedCluster::Options eo;
  eo.state_dir = JoinPath(o.out_dir, ".medeval");
  auto cluster = EmbeddedCluster::Start(std::move(eo));
  if (!cluster.ok()) {
    err << "medeval: " << cluster.status().message() << "\n";
    return kJobFailed;
  }
  auto client = CoordinatorClient::Connect((*cluster)->target(), (*cluster)->client_security());
  if (!client.ok()) {
    err << "medeval: " << client.status().message() << "\n";
    return kJobFailed;
  }
  auto resp = (*client)->Submit(spec, *suite);
  if (!resp.ok()) {
    err << "medeval: " << o.model << ": " << resp.status().message() << "\n";
    return kJobFailed;
  }
  if (resp->resumed()) {
    err << "medeval: " << o.model << ": adding to run " << resp->run_id() << " in " << o.out_dir
        << "/.medeval (questions answered before are kept)\n";
  }
  std::vector<std::string> names;
  for (const std::string& p : o.results) names.push_back(p.substr(p.rfind('/') + 1));
  FileAnswerer answerer(&(*cluster)->coordinator().scheduler(), std::move(results),
                        absl::StrCat("batch:", absl::StrJoin(names, ",")));
  st = answerer.Start(o.model);
  if (!st.ok()) {
    err << "medeval: " << st.message() << "\n";
    return kJobFailed;
  }
  WaitOptions wo;
  wo.out_dir = o.out_dir;
  std::atomic<bool> interrupted{false};
  code = WaitAndFetch(**client, {resp->run_id()}, wo, interrupted, out, err);
  answerer.Stop();
  (*cluster)->Stop(absl::ZeroDuration());
  return code;
}

}  // namespace medeval
