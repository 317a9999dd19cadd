#include "worker/worker_metrics.h"

#include <string_view>

#include "common/metric_families.h"
#include "common/version.h"

namespace medeval {

WorkerMetrics::WorkerMetrics(std::string model)
    : model_(std::move(model)), registry_(std::make_shared<prometheus::Registry>()) {
  const prometheus::Labels m = {{"model", model_}};
  requests_ = &prometheus::BuildCounter()
                   .Name("medeval_requests_total")
                   .Help(
                       "Requests to the model by outcome: ok, rate_limited, server_error, "
                       "client_error, timeout, connection, bad_response, empty_answer")
                   .Register(*registry_);
  retries_ = &prometheus::BuildCounter()
                  .Name("medeval_request_retries_total")
                  .Help("Attempts that failed and were retried, by reason")
                  .Register(*registry_);
  latency_ = &prometheus::BuildHistogram()
                  .Name("medeval_request_duration_seconds")
                  .Help("Time from sending a request to its response (or giving up on it)")
                  .Register(*registry_)
                  .Add(m, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10,
                                                                  20, 30, 60, 120, 300, 600});
  auto& tokens = prometheus::BuildCounter()
                     .Name("medeval_tokens_total")
                     .Help("Tokens of answered requests, as the server reported them")
                     .Register(*registry_);
  prompt_tokens_ = &tokens.Add({{"model", model_}, {"type", "prompt"}});
  completion_tokens_ = &tokens.Add({{"model", model_}, {"type", "completion"}});
  auto& questions = prometheus::BuildCounter()
                        .Name("medeval_questions_done_total")
                        .Help("Questions this worker settled: answered, or failed for good")
                        .Register(*registry_);
  answered_ = &questions.Add({{"model", model_}, {"result", "answered"}});
  failed_ = &questions.Add({{"model", model_}, {"result", "failed"}});
  // Outcomes appear from the start with 0, so rates work from the first scrape.
  for (const char* o : {"ok", "rate_limited", "server_error", "client_error", "timeout",
                        "connection", "bad_response", "empty_answer"}) {
    // An answer is never retried: no "ok" retry series.
    outcomes_[o] = {
        &requests_->Add({{"model", model_}, {"outcome", o}}),
        std::string_view(o) == "ok" ? nullptr : &retries_->Add({{"model", model_}, {"reason", o}})};
  }
}

void WorkerMetrics::OnAttempt(const AttemptReport& r) {
  // outcomes_ is only read here: workers of one model share these metrics.
  auto it = outcomes_.find(absl::string_view(r.outcome));
  OutcomeCounters c =
      it != outcomes_.end()
          ? it->second
          : OutcomeCounters{&requests_->Add({{"model", model_}, {"outcome", r.outcome}}),
                            &retries_->Add({{"model", model_}, {"reason", r.outcome}})};
  c.requests->Increment();
  latency_->Observe(absl::ToDoubleSeconds(r.elapsed));
  if (r.retrying && c.retries != nullptr) c.retries->Increment();
  if (r.answered) {
    answered_->Increment();
    prompt_tokens_->Increment(static_cast<double>(r.prompt_tokens));
    completion_tokens_->Increment(static_cast<double>(r.completion_tokens));
  }
  if (r.failed) failed_->Increment();
}

std::vector<prometheus::MetricFamily> WorkerStateMetrics::Collect() const {
  const WorkerSnapshot s = snapshot_();
  MetricFamilies f;
  const MetricLabels m = {{"model", s.model}};
  f.Gauge("medeval_build_info", "medeval version", {{"version", kVersion}}, 1);
  f.Gauge("medeval_worker_info", "The worker's name and model",
          {{"model", s.model}, {"worker", s.name}}, 1);
  f.Gauge("medeval_worker_connected", "1 while the stream to the coordinator is up", m,
          s.stats.connected ? 1 : 0);
  f.Gauge("medeval_requests_in_flight", "Requests to the model in flight", m, s.stats.inflight);
  f.Gauge("medeval_leases_queued", "Questions leased and waiting here for a request slot", m,
          s.stats.queued);
  f.Gauge("medeval_answers_unacked",
          "Answers sent or waiting to be sent that the coordinator has not yet made durable", m,
          s.stats.unacked);
  f.Gauge("medeval_concurrency_limit", "Requests in flight allowed now (adaptive concurrency)", m,
          s.stats.concurrency_limit);
  f.Gauge("medeval_endpoint_down",
          "1 while the model endpoint is down (questions handed back, probing it)", m,
          s.stats.endpoint.down() ? 1 : 0);
  f.Gauge("medeval_endpoint_down_since_seconds",
          "Unix time the endpoint went down; 0 while it is up", m,
          s.stats.endpoint.down() ? s.stats.endpoint.since_unix_ms() / 1000.0 : 0);
  f.Gauge("medeval_endpoint_probe_interval_seconds",
          "Seconds between probes of a down endpoint; 0 while it is up", m,
          s.stats.endpoint.probe_interval_ms() / 1000.0);
  f.Counter("medeval_worker_leases_received_total", "Questions leased to this worker", m,
            static_cast<double>(s.stats.leases));
  f.Counter("medeval_worker_reconnects_total", "Streams to the coordinator re-established", m,
            static_cast<double>(s.stats.reconnects));
  if (s.serving_model) {
    f.Gauge("medeval_model_server_ready", "1 while the local model server answers its health check",
            m, s.server_ready ? 1 : 0);
    f.Counter("medeval_model_server_restarts_total", "Restarts of the local model server", m,
              s.server_restarts);
  }
  return f.Take();
}

}  // namespace medeval
