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

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/status/status.h"
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
  absl::Status Start();
  void Drain(absl::Duration grace);
  void Stop();
  // Blocks until stopped; the fatal error, if any.
  absl::Status Wait();
  absl::Status error();
  const std::string& name() const { return options_.name; }
  // Restarts of the model server so far.
  int restarts();
  // For probes: live unless a fatal error stopped it; ready while it is
  // connected to the coordinator and can take work (its model server is
  // up, it is not draining).
  absl::Status Live();
  absl::Status Ready();
  WorkerSnapshot Snapshot();

 private:
  void Supervise();
  void Finish(absl::Status status);
  bool SleepUnlessStopping(absl::Duration d);
  // The worker once created (it lives as long as this object), or null.
  Worker* worker();

  WorkerOptions options_;
  std::optional<ServeOptions> serve_options_;
  std::unique_ptr<ModelServer> server_;
  std::thread supervisor_;
  std::mutex stop_mu_;  // held through Stop, so the threads are joined once

  std::mutex mu_;
  std::unique_ptr<Worker> worker_;  // guarded by mu_; created once the server is ready
  std::condition_variable cv_;
  bool stopping_ = false;
  bool done_ = false;
  absl::Status error_;
  int restarts_ = 0;
  bool server_ready_ = false;  // guarded by mu_
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_MANAGED_WORKER_H_
