#include "coordinator/coordinator_metrics.h"

#include <map>
#include <string>

#include "common/metric_families.h"
#include "common/version.h"

namespace medeval {
namespace {

// A run's Batch API batches: how many are in each state, and their requests.
void AddBatchMetrics(const v1::RunStatus& r, const MetricLabels& run, MetricFamilies* f) {
  if (r.batches().empty()) return;
  const char* kBatches = "medeval_batches";
  const char* kBatchesHelp =
      "Batch API batches of a run by state (validating, in_progress, finalizing, completed, ...)";
  const char* kRequests = "medeval_batch_requests";
  const char* kRequestsHelp =
      "Requests in a run's Batch API batches: total, completed and failed (as the provider "
      "counts them)";
  f->Declare(kBatches, kBatchesHelp, prometheus::MetricType::Gauge);
  f->Declare(kRequests, kRequestsHelp, prometheus::MetricType::Gauge);
  std::map<std::string, int> by_state;
  uint64_t total = 0, completed = 0, failed = 0;
  for (const v1::BatchState& b : r.batches()) {
    ++by_state[b.status().empty() ? "creating" : b.status()];
    total += b.total();
    completed += b.completed();
    failed += b.failed();
  }
  for (const auto& [state, n] : by_state) {
    MetricLabels l = run;
    l.emplace_back("state", state);
    f->Gauge(kBatches, kBatchesHelp, l, n);
  }
  for (const auto& [kind, n] : {std::pair<const char*, uint64_t>{"total", total},
                                {"completed", completed},
                                {"failed", failed}}) {
    MetricLabels l = run;
    l.emplace_back("state", kind);
    f->Gauge(kRequests, kRequestsHelp, l, static_cast<double>(n));
  }
}

}  // namespace

std::vector<prometheus::MetricFamily> CoordinatorMetrics::Collect() const {
  MetricFamilies f;
  Scheduler* scheduler = scheduler_();
  f.Gauge("medeval_coordinator_ready", "1 once the runs in the state folder are recovered", {},
          scheduler != nullptr ? 1 : 0);
  f.Gauge("medeval_build_info", "medeval version", {{"version", kVersion}}, 1);
  if (scheduler == nullptr) return f.Take();

  const v1::StatusResponse status = scheduler->Status("");
  const char* kQuestions = "medeval_questions";
  const char* kQuestionsHelp =
      "Questions of a run by state: queued (waiting for a worker), leased (being asked), "
      "answered, failed (gave up)";
  f.Declare(kQuestions, kQuestionsHelp, prometheus::MetricType::Gauge);
  for (const v1::RunStatus& r : status.runs()) {
    const MetricLabels run = {{"run", r.run_id()}, {"model", r.model()}};
    const uint64_t settled = r.answered() + r.failed() + r.leased();
    const uint64_t queued = r.total() > settled ? r.total() - settled : 0;
    for (const auto& [state, n] : {std::pair<const char*, uint64_t>{"queued", queued},
                                   {"leased", r.leased()},
                                   {"answered", r.answered()},
                                   {"failed", r.failed()}}) {
      MetricLabels l = run;
      l.emplace_back("state", state);
      f.Gauge(kQuestions, kQuestionsHelp, l, static_cast<double>(n));
    }
    f.Gauge("medeval_run_questions", "Questions in a run", run, static_cast<double>(r.total()));
    MetricLabels info = run;
    info.emplace_back("track", r.track());
    info.emplace_back("state", r.state());
    f.Gauge("medeval_run_info", "A run's track and state (running, done, incomplete, ...)", info,
            1);
    f.Gauge("medeval_run_answers_per_second", "Answers per second, recent", run, r.rate());
    if (r.eta_s() >= 0) {
      f.Gauge("medeval_run_eta_seconds", "Estimated seconds until every question is settled", run,
              r.eta_s());
    }
    f.Counter("medeval_run_retries_total", "Attempts beyond the first, over the run's answers", run,
              static_cast<double>(r.retries()));
    f.Counter("medeval_run_duplicate_answers_total",
              "Answers that arrived after another copy of the question was answered (backups)", run,
              static_cast<double>(r.duplicates()));
    f.Gauge("medeval_run_paused_until_seconds",
            "Unix time a model paused by a 429 with Retry-After resumes; 0: not paused", run,
            static_cast<double>(r.paused_until_unix_ms()) / 1000.0);
    f.Gauge("medeval_run_endpoint_down_since_seconds",
            "Unix time the model's endpoint went down for every worker; 0: up", run,
            r.endpoint_state().down() ? r.endpoint_state().since_unix_ms() / 1000.0 : 0);
    if (r.concurrency_limit() > 0) {
      MetricLabels why = run;
      why.emplace_back("cause", r.concurrency_cause());
      f.Gauge("medeval_run_concurrency_limit",
              "Auto concurrency: requests in flight allowed to the model's workers together, "
              "labelled with the kind of its last change",
              why, r.concurrency_limit());
    }
    if (r.has_cost()) {
      f.Gauge("medeval_run_cost", "What the run's answers cost so far (the price's currency)", run,
              r.cost().total());
    }
    AddBatchMetrics(r, run, &f);
  }

  std::map<std::string, int> connected;  // by model
  const char* kLeased = "medeval_worker_leased_questions";
  f.Declare(kLeased, "Questions a connected worker holds", prometheus::MetricType::Gauge);
  for (const v1::WorkerStatus& w : status.workers()) {
    if (!w.connected()) continue;
    ++connected[w.model()];
    const MetricLabels l = {{"worker", w.name()}, {"model", w.model()}};
    f.Gauge(kLeased, "Questions a connected worker holds", l, w.leased());
    f.Gauge("medeval_worker_max_inflight", "Requests a connected worker has in flight at most", l,
            w.max_inflight());
    if (w.concurrency() > 0) {
      f.Gauge("medeval_worker_concurrency", "Auto concurrency: the worker's share of its model's limit",
              l, w.concurrency());
    }
    f.Counter("medeval_worker_answered_total", "Answers a connected worker delivered", l,
              static_cast<double>(w.answered()));
  }
  const char* kConnected = "medeval_workers_connected";
  f.Declare(kConnected, "Workers connected, by model", prometheus::MetricType::Gauge);
  for (const auto& [model, n] : connected) f.Gauge(kConnected, "", {{"model", model}}, n);

  const Scheduler::Counters c = scheduler->counters();
  f.Counter("medeval_coordinator_leases_total", "Questions handed to workers", {},
            static_cast<double>(c.leases));
  f.Counter("medeval_coordinator_results_total", "Answers and failures received from workers", {},
            static_cast<double>(c.results));
  f.Counter("medeval_coordinator_backup_leases_total", "Second copies of stragglers handed out", {},
            static_cast<double>(c.backups));
  f.Counter("medeval_coordinator_workers_expired_total",
            "Workers presumed gone after missed heartbeats", {},
            static_cast<double>(c.expired_workers));
  f.Counter("medeval_coordinator_rate_grants_total", "Request grants issued under rpm/tpm limits",
            {}, static_cast<double>(c.grants));
  f.Counter("medeval_coordinator_model_pauses_total",
            "Model-wide pauses after a 429 with Retry-After", {},
            static_cast<double>(c.model_pauses));
  return f.Take();
}

}  // namespace medeval
