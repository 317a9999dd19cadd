// The coordinator's Prometheus metrics, read from the scheduler at scrape
// time: questions queued / leased / answered / failed per run and model,
// answers per second, ETA, retries, Batch API batches by state and their
// requests, cost so far, connected workers and what each holds, and the
// scheduler's event counters.
//
// Thread-safety: Collect may run on any thread; it takes the scheduler's
// lock briefly (through Scheduler::Status and counters()).
#ifndef MEDEVAL_COORDINATOR_COORDINATOR_METRICS_H_
#define MEDEVAL_COORDINATOR_COORDINATOR_METRICS_H_

#include <prometheus/collectable.h>

#include <functional>
#include <vector>

#include "coordinator/scheduler.h"

namespace medeval {

class CoordinatorMetrics : public prometheus::Collectable {
 public:
  // `scheduler` returns null until the coordinator has recovered its runs.
  explicit CoordinatorMetrics(std::function<Scheduler*()> scheduler)
      : scheduler_(std::move(scheduler)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<Scheduler*()> scheduler_;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_COORDINATOR_METRICS_H_
