// A worker as a process runs it: alone in front of an API, or in front of a
// local model server that it starts and supervises (--serve). With a server,
// the worker connects to the coordinator only once the server is ready; when
// the server dies the worker hands its questions back, restarts the server
// with back-off, and takes work again once it is ready; on stop it drains and
// then stops the server (SIGTERM, SIGKILL after a grace period).
//
// Thread-safety: Start, Drain, Stop and Wait from any thread.
#ifndef MEDEVAL_WORKER_MANAGED_WORKER_H_
#define MEDEVAL_WORKER_MANAGED_WORKER_H_

#include <memory>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "worker/model_server.h"
#include "worker/worker.h"
#include "worker/worker_metrics.h"

namespace medeval {

class ManagedWorker {
 public:
  // With `serve`, options.backend.endpoint is set from the server's port.
  ManagedWorker(WorkerOptions options, std::optional<ServeOptions> serve);
  ~ManagedWorker();
  ManagedWorker(const ManagedWorker&) = delete;
  ManagedWorker& operator=(const ManagedWorker&) = delete;

  // Returns at once; the server (if any) starts in the background.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(mu_);
  void Drain(absl::Duration grace) ABSL_LOCKS_EXCLUDED(mu_, stop_mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_, stop_mu_);
  // Blocks until stopped; the fatal error, if any.
  absl::Status Wait() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status error() ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& name() const { return options_.name; }
  // Batch mode: whether stopping cancels the unfinished batches (see
  // Worker::SetBatchCancelOnExit). A worker not created yet has none.
  void SetBatchCancelOnExit(bool cancel) ABSL_LOCKS_EXCLUDED(mu_);
  // For probes: live unless a fatal error stopped it; ready while it is
  // connected to the coordinator and can take work (its model server is
  // up, it is not draining).
  absl::Status Live();
  absl::Status Ready();
  WorkerSnapshot Snapshot();

 private:
  void Supervise() ABSL_LOCKS_EXCLUDED(mu_);
  void Finish(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  bool SleepUnlessStopping(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);
  // The worker once created (it lives as long as this object), or null.
  Worker* worker() ABSL_LOCKS_EXCLUDED(mu_);

  WorkerOptions options_;
  std::optional<ServeOptions> serve_options_;
  std::unique_ptr<ModelServer> server_;
  std::thread supervisor_;
  absl::Mutex stop_mu_;  // held through Stop, so the threads are joined once

  // Waits (Wait, the supervisor's sleeps) use Mutex::Await on these flags.
  absl::Mutex mu_;
  std::unique_ptr<Worker> worker_ ABSL_GUARDED_BY(mu_);  // created once the server is ready
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  int restarts_ ABSL_GUARDED_BY(mu_) = 0;
  bool server_ready_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_MANAGED_WORKER_H_
