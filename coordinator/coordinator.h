// The coordinator process: state directory, journal, scheduler and gRPC
// server put together. `medeval coordinator` runs one as a service;
// `medeval run` embeds one on a loopback port.
//
// On start it recovers every run in the state directory (journal replay) and
// continues them; workers reconnect by themselves.
//
// Thread-safety: all methods are thread-safe. Shutdown is idempotent.
#ifndef MEDEVAL_COORDINATOR_COORDINATOR_H_
#define MEDEVAL_COORDINATOR_COORDINATOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "common/grpc_util.h"
#include "common/ops_server.h"
#include "coordinator/journal.h"
#include "coordinator/scheduler.h"
#include "coordinator/state_dir.h"

namespace medeval {

class CoordinatorService;

class Coordinator {
 public:
  struct Options {
    std::string listen = "127.0.0.1:0";
    std::string state_dir;
    ServerTls tls;
    std::string token;  // empty: no token required
    Scheduler::Options scheduler;
    absl::Duration tick_interval = absl::Milliseconds(200);
    // Largest accepted submission (questions and images), bytes.
    uint64_t max_upload_bytes = uint64_t{4} << 30;
    // HOST:PORT for /metrics, /healthz and /readyz; empty: none.
    std::string metrics_listen;
    // More metrics served beside the coordinator's own (an embedded run's
    // workers, say).
    std::vector<std::shared_ptr<const prometheus::Collectable>> extra_metrics;
    // false: runs in the state directory are not recovered at start, only
    // when a submission names one by its idempotency key (`medeval run`: a
    // folder of other runs does not make this command ask their questions).
    bool recover_all_runs = true;
  };

  static absl::StatusOr<std::unique_ptr<Coordinator>> Start(Options options);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Stops serving (open streams end with UNAVAILABLE so workers reconnect
  // elsewhere or later) and makes the journal durable.
  void Shutdown() ABSL_LOCKS_EXCLUDED(tick_mu_);

  int port() const { return port_; }
  // The port of /metrics (0 without metrics_listen).
  int metrics_port() const;
  Scheduler& scheduler() { return *scheduler_; }
  Executor& executor() { return *executor_; }
  const Options& options() const { return options_; }
  // Runs found in the state directory that could not be recovered.
  std::vector<std::string> recovery_errors() const { return recovery_errors_; }

  // Creates a run from an upload (or finds the run with the same
  // idempotency key and reopens its failed questions). Blocks on disk I/O:
  // call it off the gRPC threads.
  absl::StatusOr<v1::SubmitResponse> CreateRun(v1::RunSpec spec, std::vector<UploadedFile> files)
      ABSL_LOCKS_EXCLUDED(submit_mu_);

 private:
  explicit Coordinator(Options options);
  absl::Status Init();
  void Recover() ABSL_LOCKS_EXCLUDED(submit_mu_);
  // The run of `key` stored in the state directory, loaded and added to the
  // scheduler; "" when there is none.
  absl::StatusOr<std::string> RecoverRunByKey(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(submit_mu_);
  absl::StatusOr<LoadedRun> LoadStoredRun(const v1::RunSpec& spec);
  // Resumes the unloadable run `run_id` after restoring its damaged input
  // copies from `files` (when their SHA-256 matches the submission), or
  // refuses with kFailedPrecondition.
  absl::StatusOr<v1::SubmitResponse> RecoverWithUpload(const std::string& run_id,
                                                       const absl::Status& load_error,
                                                       const std::vector<UploadedFile>& files)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(submit_mu_);
  void Merge(const std::string& run_id);
  // Loads a just-stored run (images, journal) and hands it to the scheduler.
  // `answers_reused` (may be null): answers taken over from an earlier run.
  absl::Status AddCreatedRun(const v1::RunSpec& final_spec, std::shared_ptr<Suite> suite,
                             uint32_t* answers_reused);
  void TickLoop() ABSL_LOCKS_EXCLUDED(tick_mu_);

  const Options options_;
  absl::Status StartOps();

  std::unique_ptr<OpsServer> ops_;
  std::atomic<bool> ready_{false};  // runs recovered and gRPC serving
  std::unique_ptr<StateDir> state_;
  std::unique_ptr<JournalWriter> journal_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<std::string> recovery_errors_;
  absl::Mutex submit_mu_;  // one submission at a time (idempotency keys)
  // Runs that could not be recovered, by idempotency key: (run id, why).
  std::map<std::string, std::pair<std::string, absl::Status>> unloadable_
      ABSL_GUARDED_BY(submit_mu_);

  absl::Mutex tick_mu_;
  bool stopping_ ABSL_GUARDED_BY(tick_mu_) = false;  // the ticker awaits it
  std::thread ticker_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_COORDINATOR_H_
