// `medeval run` on one machine: a coordinator on a loopback port and local
// workers that connect to it over gRPC exactly as they would from other
// machines, so the embedded run and the cluster share one code path. The
// port is reachable by every local process, so the coordinator requires a
// random token made for this run, which only its own workers and client get.
//
// Thread-safety: methods are thread-safe.
#ifndef MEDEVAL_LOCAL_EMBEDDED_CLUSTER_H_
#define MEDEVAL_LOCAL_EMBEDDED_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/coordinator.h"
#include "worker/managed_worker.h"

namespace medeval {

class EmbeddedCluster {
 public:
  struct WorkerGroup {
    std::string model;
    BackendConfig backend;
    std::optional<ServeOptions> serve;  // each worker starts its own server
    int count = 2;
    int concurrency = kAutoConcurrency;  // per worker, or auto
    int max_concurrency = kDefaultMaxConcurrency;
    bool adaptive_concurrency = false;
    BatchSettings batch;
  };
  struct Options {
    std::string state_dir;
    std::vector<WorkerGroup> groups;
    Scheduler::Options scheduler;
    // HOST:PORT for the coordinator's /metrics (with the workers' request
    // metrics, per model) and probes; empty: none.
    std::string metrics_listen;
    // See Coordinator::Options::recover_all_runs.
    bool recover_all_runs = true;
  };

  static absl::StatusOr<std::unique_ptr<EmbeddedCluster>> Start(Options options);
  ~EmbeddedCluster();

  // "127.0.0.1:PORT" of the coordinator.
  std::string target() const;
  // What a client of this coordinator needs (its per-run token).
  ClientSecurity client_security() const;
  Coordinator& coordinator() { return *coordinator_; }
  // When every worker of `model` has stopped with an error: the first error.
  absl::Status ModelError(const std::string& model);
  // Batch mode: whether Stop cancels the workers' unfinished batches (the
  // user's answer at Ctrl-C) or leaves them running.
  void SetBatchCancelOnExit(bool cancel);
  // Workers finish (up to `grace`) what they are asking, then the coordinator
  // makes the journal durable and stops.
  void Stop(absl::Duration grace);

 private:
  EmbeddedCluster() = default;
  std::string token_;
  std::unique_ptr<Coordinator> coordinator_;
  std::vector<std::pair<std::string, std::unique_ptr<ManagedWorker>>> workers_;  // (model, worker)
  bool stopped_ = false;
};

}  // namespace medeval

#endif  // MEDEVAL_LOCAL_EMBEDDED_CLUSTER_H_
