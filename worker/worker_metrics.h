// A worker process's Prometheus metrics. Per attempt (from the backend's
// hook): requests by outcome, retries by reason, a request latency
// histogram, tokens, questions answered or failed. Read at scrape time from
// the worker: requests in flight, leases queued, answers not yet
// acknowledged, the connection to the coordinator, the concurrency limit,
// and the served model's restarts and readiness.
//
// Thread-safety: OnAttempt is thread-safe (prometheus-cpp metrics are
// atomic); Collect may run on any thread.
#ifndef MEDEVAL_WORKER_WORKER_METRICS_H_
#define MEDEVAL_WORKER_WORKER_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "worker/chat_backend.h"
#include "worker/worker.h"

namespace medeval {

class WorkerMetrics {
 public:
  explicit WorkerMetrics(std::string model);
  void OnAttempt(const AttemptReport& report);
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  const std::string model_;
  std::shared_ptr<prometheus::Registry> registry_;
  // Per outcome (AttemptReport::outcome), made once: attempts and retries
  // are counted on the HTTP loop without a family lookup.
  struct OutcomeCounters {
    prometheus::Counter* requests;
    prometheus::Counter* retries;
  };
  std::map<std::string, OutcomeCounters, std::less<>> outcomes_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* retries_;
  prometheus::Histogram* latency_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* completion_tokens_;
  prometheus::Counter* answered_;
  prometheus::Counter* failed_;
};

// What a worker process looks like at scrape time.
struct WorkerSnapshot {
  std::string model;
  std::string name;
  Worker::Stats stats;
  bool serving_model = false;  // runs a model server (--serve)
  bool server_ready = false;
  int server_restarts = 0;
};

class WorkerStateMetrics : public prometheus::Collectable {
 public:
  explicit WorkerStateMetrics(std::function<WorkerSnapshot()> snapshot)
      : snapshot_(std::move(snapshot)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<WorkerSnapshot()> snapshot_;
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_WORKER_METRICS_H_
