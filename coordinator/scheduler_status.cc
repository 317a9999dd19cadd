// The Scheduler's status reports: runs (progress, rate, ETA, failures, Batch
// API batches, cost so far), connected and recently departed workers, and its
// event counters.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/cost.h"
#include "common/version.h"
#include "coordinator/scheduler.h"
#include "coordinator/scheduler_internal.h"

namespace medeval {
namespace {

constexpr size_t kMaxFailedListed = 50;

}  // namespace

void Scheduler::FillRunStatus(const Run& run, v1::RunStatus* out) {
  out->set_run_id(run.spec.run_id());
  out->set_model(run.spec.model());
  out->set_track(run.spec.track());
  out->set_state(RunPhaseName(run.phase));
  out->set_total(run.total());
  out->set_answered(run.answered);
  out->set_failed(run.failed);
  out->set_leased(run.leased);
  out->set_retries(run.retries);
  out->set_duplicates(run.duplicates);
  out->set_truncated(run.truncated);
  for (const auto& [worker, list] : run.batches) {
    for (const v1::BatchState& b : list) *out->add_batches() = b;
  }
  if (HasPrice(run.spec.price())) {
    *out->mutable_cost() = CostMeter(run.spec.price(), run.tokens).ToProto();
  }
  out->set_created_unix_ms(run.spec.created_unix_ms());
  if (run.finished != absl::InfinitePast())
    out->set_finished_unix_ms(absl::ToUnixMillis(run.finished));
  out->set_error(run.error);
  double rate = 0;
  if (run.samples.size() >= 2) {
    const auto& a = run.samples.front();
    const auto& b = run.samples.back();
    double secs = absl::ToDoubleSeconds(b.first - a.first);
    if (secs > 0) rate = static_cast<double>(b.second - a.second) / secs;
  }
  out->set_rate(rate);
  uint64_t remaining = run.total() - run.answered - run.failed;
  out->set_eta_s(remaining == 0 ? 0 : (rate > 0 ? static_cast<double>(remaining) / rate : -1));
  if (run.phase == RunPhase::kRunning) {
    const std::string& model = run.spec.model();
    if (auto m = models_.find(model); m != models_.end()) {
      if (m->second.paused_until > options_.clock->Now()) {
        out->set_paused_until_unix_ms(absl::ToUnixMillis(m->second.paused_until));
      }
      if (const ConcurrencyController* c = m->second.concurrency.get()) {
        out->set_concurrency_limit(static_cast<uint32_t>(c->limit()));
        out->set_concurrency_reason(c->reason());
        out->set_concurrency_cause(c->cause());
      }
    }
    // The endpoint is down for the run when it is down for every worker of
    // the model; the one down longest says why.
    const v1::EndpointState* down = nullptr;
    bool any = false;
    for (const auto& [id, w] : workers_) {
      if (w->hello.model() != model || w->draining || !w->error.empty()) continue;
      any = true;
      if (!w->endpoint.down()) {
        down = nullptr;
        break;
      }
      if (down == nullptr || w->endpoint.since_unix_ms() < down->since_unix_ms())
        down = &w->endpoint;
    }
    if (any && down != nullptr) *out->mutable_endpoint_state() = *down;
  }
  std::vector<uint32_t> failed;
  for (const auto& [q, err] : run.failure_errors) failed.push_back(q);
  std::sort(failed.begin(), failed.end());
  for (size_t i = 0; i < failed.size() && i < kMaxFailedListed; ++i) {
    out->add_failed_questions(
        absl::StrCat(run.Describe(failed[i]), ": ", run.failure_errors.at(failed[i])));
  }
}

void Scheduler::SetBatches(Worker* w, const v1::BatchReport& report) {
  for (const auto& [id, run] : runs_by_id_) run->batches.erase(w->id);
  for (const v1::BatchState& b : report.batches()) {
    auto it = runs_by_id_.find(b.run_id());
    // A batch of a run this coordinator does not hold (another state
    // folder) is the worker's business only.
    if (it == runs_by_id_.end() || it->second->spec.model() != w->hello.model()) continue;
    it->second->batches[w->id].push_back(b);
  }
}

void Scheduler::FillWorkerStatus(const Worker& w, v1::WorkerStatus* out) {
  out->set_worker_id(w.id);
  out->set_name(w.hello.worker_name());
  out->set_model(w.hello.model());
  out->set_max_inflight(w.hello.max_inflight());
  out->set_leased(static_cast<uint32_t>(w.leases.size()));
  out->set_answered(w.answered);
  out->set_endpoint(w.hello.endpoint());
  out->set_connected_unix_ms(absl::ToUnixMillis(w.connected));
  out->set_error(w.error);
  out->set_draining(w.draining);
  out->set_paused(w.paused);
  out->set_concurrency(w.share);
  if (w.endpoint.down()) *out->mutable_endpoint_state() = w.endpoint;
}

v1::StatusResponse Scheduler::Status(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  v1::StatusResponse resp;
  resp.set_coordinator_version(kVersion);
  for (const auto& run : runs_) {
    if (!run_id.empty() && run->spec.run_id() != run_id) continue;
    FillRunStatus(*run, resp.add_runs());
  }
  for (const auto& [id, w] : workers_) {
    v1::WorkerStatus* st = resp.add_workers();
    FillWorkerStatus(*w, st);
    st->set_connected(true);
  }
  // Workers that left with an error stay visible: the error is often the
  // reason a run does not progress (a rejected API key, say).
  for (const v1::WorkerStatus& st : departed_) {
    if (!st.error().empty() && !workers_.contains(st.worker_id())) *resp.add_workers() = st;
  }
  return resp;
}

Scheduler::Counters Scheduler::counters() {
  absl::MutexLock lock(&mu_);
  return counters_;
}

}  // namespace medeval
