// The coordinator's state and decisions: runs and their questions, connected
// workers, and the leases between them.
//
// A question is identified by (run, index). It is leased to a worker serving
// the run's model, under credit-based flow control (a worker holds at most
// max_inflight + prefetch leases). The first result for a question wins: it
// is journaled, and acknowledged to the worker only once durable; later
// copies are counted as duplicates and dropped. A worker that disconnects or
// stops heartbeating loses its leases, which go back to the queue. At the
// tail of a run, idle workers get backup copies of stragglers.
//
// Thread-safety: every public method is thread-safe; all state lives behind
// one mutex. WorkerChannel::Send and the completion callback are invoked with
// that mutex held, so they must only queue work, never block or call back in.
#ifndef MEDEVAL_COORDINATOR_SCHEDULER_H_
#define MEDEVAL_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/cost.h"
#include "common/suite.h"
#include "coordinator/concurrency_controller.h"
#include "coordinator/journal.h"
#include "coordinator/rate_limiter.h"
#include "coordinator/run_images.h"
#include "coordinator/run_state.h"
#include "proto/medeval.pb.h"

namespace medeval {

// The scheduler's handle on one worker stream (implemented by the gRPC
// reactor). Both methods are called with the scheduler's mutex held and must
// not block.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  // Queues `msg` for the worker (merged with whatever is already queued).
  virtual void Send(v1::CoordinatorMessage msg) = 0;
  // Ends the stream with `status` once queued messages are written.
  virtual void Close(const absl::Status& status) = 0;
};

// kStopped: the journal could not be written (disk full, I/O error); nothing
// more is asked until the coordinator restarts on a working disk.
enum class RunPhase { kRunning, kMerging, kDone, kIncomplete, kMergeFailed, kStopped };
const char* RunPhaseName(RunPhase phase);

class Scheduler {
 public:
  struct Options {
    // A worker silent for this long is considered gone: its leases return.
    absl::Duration heartbeat_timeout = absl::Seconds(30);
    // How often workers are asked to heartbeat.
    absl::Duration heartbeat_interval = absl::Seconds(5);
    // A lease becomes a straggler (eligible for a backup copy) after
    // max(backup_min_age, backup_factor x the run's typical lease time).
    absl::Duration backup_min_age = absl::Seconds(10);
    double backup_factor = 4;
    bool backups = true;
    // The longest model-wide pause a worker may ask for (its Retry-After).
    absl::Duration max_pause = absl::Minutes(10);
    // After a restart with unfinished runs, wait this long for workers to
    // reconnect and reclaim the questions they still work on.
    absl::Duration startup_grace = absl::ZeroDuration();
    // Models whose workers ask for auto concurrency get a controller with
    // these settings (its max is the sum of those workers' max_inflight).
    ConcurrencyController::Options auto_concurrency;
    Clock* clock = Clock::Real();
    // Called (with the mutex held) when a run has every question answered or
    // failed and durable; the receiver merges outputs and calls FinishMerge.
    std::function<void(const std::string& run_id)> on_run_complete;
  };

  Scheduler(Options options, JournalWriter* journal);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // --- Runs.
  // Adds a run (new or recovered). A run whose every question is settled
  // goes straight to completion.
  absl::Status AddRun(LoadedRun run);
  // The run created with `key`, if any.
  std::string FindRunByKey(const std::string& key);
  // Puts the failed questions of `run_id` back in the queue (journaled);
  // returns how many.
  absl::StatusOr<uint32_t> Reopen(const std::string& run_id);
  // A model's budgets are those of the latest submission that set any
  // (resubmitting with a larger quota raises them).
  void SetLimits(const std::string& model, const v1::ModelLimits& limits);
  absl::StatusOr<RunSnapshot> Snapshot(const std::string& run_id);
  void FinishMerge(const std::string& run_id, const absl::Status& status);
  struct OutputInfo {
    RunPhase phase;
    std::string output_dir;
    std::string model;
  };
  absl::StatusOr<OutputInfo> Output(const std::string& run_id);
  bool HasRun(const std::string& run_id);

  // --- Workers (called by the stream reactors).
  // Registers a worker from the first message of its stream; returns its id.
  // `channel` stays valid until Disconnect(id, channel) returns. Questions
  // the hello says it still asks come back to it (at most max_inflight of
  // them), and so do those it answers in that same message (answers not
  // acknowledged before a reconnect), when nobody else holds them. A name
  // already connected from another process is refused (kAlreadyExists).
  absl::StatusOr<std::string> Connect(const v1::WorkerMessage& first, WorkerChannel* channel);
  absl::StatusOr<std::string> Connect(const v1::Hello& hello, WorkerChannel* channel);
  // Results are moved out of `msg`.
  void OnMessage(const std::string& worker_id, WorkerChannel* channel, v1::WorkerMessage* msg);
  void Disconnect(const std::string& worker_id, WorkerChannel* channel);

  // Heartbeat timeouts, backups, grace period, rate samples. Call often
  // (every few hundred milliseconds).
  void Tick();

  v1::StatusResponse Status(const std::string& run_id);

  // Counters for metrics and benchmarks.
  struct Counters {
    uint64_t leases = 0;
    uint64_t results = 0;
    uint64_t duplicates = 0;
    uint64_t backups = 0;
    uint64_t expired_workers = 0;
    uint64_t grants = 0;
    uint64_t model_pauses = 0;
    // Results refused: no lease for that question on the sender's stream.
    uint64_t unleased_results = 0;
  };
  Counters counters();

 private:
  struct Run;
  struct Worker;
  // Budgets shared by the workers of one model, and its 429 pause.
  struct Model {
    v1::ModelLimits limits;
    TokenBucket requests;
    TokenBucket tokens;
    double tokens_per_request = 0;  // running estimate, from answers' usage
    absl::Time paused_until = absl::InfinitePast();
    size_t next_grantee = 0;  // round-robin position among its workers
    // Auto concurrency: one limit for the model's endpoint, shared by its
    // workers that asked for it; null while none did.
    std::unique_ptr<ConcurrencyController> concurrency;
    bool limited() const { return limits.rpm() > 0 || limits.tpm() > 0; }
  };
  struct Lease {
    Run* run;
    uint32_t q;
    Worker* worker;
    absl::Time issued;
    bool backup;
  };

  static uint64_t QKey(const Run& run, uint32_t q);
  void Dispatch(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchModel(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddLease(Run* run, uint32_t q, Worker* w, bool backup, v1::CoordinatorMessage* msg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops a lease; with `requeue` a question nobody else holds goes back to
  // the queue.
  void DropLease(uint64_t lease_id, bool requeue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleResult(Worker* w, v1::Result* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease on w's stream for question q of `run` (preferring `lease_id`),
  // or 0 when w holds none.
  uint64_t LeaseOf(const Worker* w, const Run* run, uint32_t q, uint64_t lease_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leases question `key` to w when it is pending and of w's model.
  bool Reclaim(Worker* w, const v1::QuestionKey& key, v1::CoordinatorMessage* msg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A journaled record, as the journal's writer thread reports it.
  struct Durable {
    uint32_t run_num;
    uint32_t q;
    bool failed;
    std::string worker_id;
    absl::StatusOr<uint64_t> offset;
    bool truncated = false;      // an answer cut off at max_tokens
    bool more_attempts = false;  // a JournalEntry.more_attempts record
    TokenTally tokens = {};      // the record's tokens
  };
  void OnDurable(Durable d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An answer too large to keep becomes a failure that says so.
  static void CapAnswer(v1::Result* r);
  // The run's journal failed: no more leases, the error kept for status.
  void StopRun(Run* run, const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeComplete(Run* run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts `n` requests of a copy of question `q` whose result is not kept,
  // and journals them.
  void AddMoreAttempts(Run* run, uint32_t q, uint32_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells `holder` to cancel lease `id` (dropped here) and waits for the
  // requests it sent for it.
  void CancelCopy(uint64_t id, bool requeue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker's report of what a cancelled lease had sent.
  void OnCancelled(Worker* w, const v1::CancelledCopy& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies the records of one journal batch under one lock, then sends the
  // acknowledgements it gathered.
  void ApplyDurableBatch();
  // With `dispatch`, the leases it held go to the model's other workers now.
  void RemoveWorker(Worker* w, const std::string& why, bool dispatch = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetState(Run* run, uint32_t q, uint8_t state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts q back at the front of the queue and the run among the active ones.
  void Requeue(Run* run, uint32_t q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Backups(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillRunStatus(const Run& run, v1::RunStatus* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillWorkerStatus(const Worker& w, v1::WorkerStatus* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool InGrace() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetLimitsLocked(const std::string& model, const v1::ModelLimits& limits)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands out grants to the model's workers as its budgets allow.
  void Grant(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PauseModel(Worker* from, absl::Duration d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Auto concurrency (scheduler_concurrency.cc): a worker that asked for it
  // joins its model's controller; answers and load signals feed it; the
  // model's limit is split among its usable auto workers, each told its share.
  void JoinAutoConcurrency(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FeedConcurrency(Worker* w, const v1::Result& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FeedConcurrency(Worker* w, const v1::LoadSignals& load) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TickConcurrency(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ShareConcurrency(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ModelPaused(const std::string& model, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker's endpoint went down or answers again.
  void SetEndpointState(Worker* w, const v1::EndpointState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker's Batch API batches, as it reports them now.
  void SetBatches(Worker* w, const v1::BatchReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  JournalWriter* const journal_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Run>> runs_ ABSL_GUARDED_BY(mu_);  // index = run number
  absl::flat_hash_map<std::string, Run*> runs_by_id_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Run*> runs_by_key_ ABSL_GUARDED_BY(mu_);
  // Runs with questions to ask, per model, in submission order.
  absl::flat_hash_map<std::string, std::vector<Run*>> active_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> round_robin_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Model> models_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::WorkerStatus> departed_ ABSL_GUARDED_BY(mu_);  // recent, for status
  absl::flat_hash_map<uint64_t, Lease> leases_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, absl::InlinedVector<uint64_t, 2>> leases_by_question_
      ABSL_GUARDED_BY(mu_);
  // Records of the journal batch being committed; only the journal's writer
  // thread touches it (its done callbacks and after-batch hook).
  std::vector<Durable> durable_batch_;
  // Acks of answers made durable in the batch being applied.
  absl::flat_hash_map<std::string, v1::CoordinatorMessage> pending_acks_ ABSL_GUARDED_BY(mu_);
  uint64_t next_lease_id_ ABSL_GUARDED_BY(mu_);
  absl::Time grace_until_ ABSL_GUARDED_BY(mu_);
  bool grace_over_ ABSL_GUARDED_BY(mu_) = true;
  Counters counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_SCHEDULER_H_
