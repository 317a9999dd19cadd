// A worker: connects out to the coordinator (so it can sit behind NAT or in
// a pod), says which model it serves and how many requests it can have in
// flight, and answers leased questions through its model backend.
//
// Nothing done is lost to a broken connection: answers stay in memory until
// the coordinator acknowledges them (they are journaled by then) and are sent
// again after reconnecting; questions still being asked are reported in the
// next hello so the coordinator leaves them with this worker.
//
// Thread-safety: public methods are thread-safe. Internally one mutex guards
// the worker's state; the gRPC reactor and the HTTP loop thread call in.
#ifndef MEDEVAL_WORKER_WORKER_H_
#define MEDEVAL_WORKER_WORKER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_util.h"
#include "proto/medeval.grpc.pb.h"
#include "common/model_config.h"
#include "worker/batch_runner.h"
#include "worker/chat_backend.h"
#include "worker/http_client.h"

namespace medeval {

struct WorkerOptions {
  std::string coordinator;  // host:port
  ClientSecurity security;
  std::string name;      // unique per coordinator; default host-pid
  std::string model;     // the model this worker serves
  int concurrency = 16;  // requests in flight to the model (auto: at most)
  // `--concurrency auto`: the coordinator sets how many of `concurrency`
  // are in flight, from what the model's endpoint does for all its workers.
  bool auto_concurrency = false;
  int prefetch = -1;     // extra leases queued locally; -1: concurrency / 4 (at least 2)
  BackendConfig backend;
  absl::Duration reconnect_min = absl::Milliseconds(250);
  // Short: a restarted coordinator waits only its start-up grace (5 s by
  // default) for the workers that held its questions.
  absl::Duration reconnect_max = absl::Seconds(2);
  // Answers wait this long to go out together: under load one message then
  // carries many, and the coordinator's replies (credits) batch up too.
  absl::Duration result_linger = absl::Milliseconds(1);
  // Halve the requests in flight on a 429, add one back after each window of
  // answers without one (up to `concurrency`).
  bool adaptive_concurrency = false;
  // Answer through the provider's Batch API (worker/batch_runner.h).
  BatchSettings batch;
  // Every attempt that ended (metrics); runs on the HTTP loop thread.
  std::function<void(const AttemptReport&)> on_attempt_done;
};

// Sets `concurrency` and `auto_concurrency` of `o` from a models-file or
// flag value: kAutoConcurrency means auto, up to `max_concurrency`.
void SetConcurrency(int concurrency, int max_concurrency, WorkerOptions* o);

class Worker {
 public:
  explicit Worker(WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  absl::Status Start();
  // Takes no more work, hands queued leases back, lets in-flight questions
  // finish (up to `grace`) and their answers be acknowledged, then stops.
  void Drain(absl::Duration grace) ABSL_LOCKS_EXCLUDED(mu_, stop_mu_);
  // Stops at once; unanswered leases return to the queue at the coordinator.
  // When it returns no callback of the model backend runs any more.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_, stop_mu_);
  // Hands every lease back and takes none until Resume (the model server is
  // restarting). Answers already made are kept and still delivered.
  void Pause(const std::string& why) ABSL_LOCKS_EXCLUDED(mu_);
  void Resume() ABSL_LOCKS_EXCLUDED(mu_);
  // Later requests (online and Batch API) go to `endpoint` (a local server
  // on a new port).
  void SetEndpoint(const Endpoint& endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  // Batch mode: whether stopping cancels the unfinished batches (the
  // user's answer at Ctrl-C) or leaves them running.
  void SetBatchCancelOnExit(bool cancel);
  // Blocks until the worker has stopped; returns why if it was an error
  // (e.g. the model API refused the key, or the coordinator the token).
  absl::Status Wait() ABSL_LOCKS_EXCLUDED(mu_);
  // Returns the fatal error so far, without waiting.
  absl::Status error() ABSL_LOCKS_EXCLUDED(mu_);

  struct Stats {
    uint64_t leases = 0;
    uint64_t answered = 0;
    uint64_t failed = 0;
    uint64_t reconnects = 0;  // streams welcomed after an earlier one
    bool ever_connected = false;
    bool connected = false;
    int inflight = 0;
    int queued = 0;
    int unacked = 0;
    int concurrency_limit = 0;  // current limit (adaptive or auto concurrency)
    bool paused = false;        // its model server is restarting
    bool draining = false;
    v1::EndpointState endpoint;  // down: handed its questions back, probing
  };
  Stats stats() ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& name() const { return options_.name; }

 private:
  class Stream;
  struct Inflight {
    uint64_t ask_id;
    v1::QuestionKey key;
  };

  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  void OnMessage(Stream* stream, const v1::CoordinatorMessage& msg) ABSL_LOCKS_EXCLUDED(mu_);
  void HandleLocked(const v1::CoordinatorMessage& msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The end of a stream, in two steps: OnStreamDone (from its OnDone) takes
  // it out of use; OnStreamGone, once it is destroyed, lets the loop (and so
  // Stop) go on.
  void OnStreamDone(Stream* stream, const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void OnStreamGone() ABSL_LOCKS_EXCLUDED(mu_);
  void StartLocked(const v1::Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnAsked(uint64_t lease_id, const v1::QuestionKey& key, AskOutcome outcome)
      ABSL_LOCKS_EXCLUDED(mu_);
  void FailLocked(const std::string& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendLocked(const v1::WorkerMessage& msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Half-closes the stream after what is queued (the coordinator then ends it).
  void CloseSendLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::WorkerMessage HelloLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void ScheduleFlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushOutbox() ABSL_LOCKS_EXCLUDED(mu_);
  void FlushOutboxLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Backend hooks.
  void OnGrantDemand();
  void ReportGrants() ABSL_LOCKS_EXCLUDED(mu_);
  void OnRateLimited(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);
  void OnAttempt(bool throttled, bool timed_out) ABSL_LOCKS_EXCLUDED(mu_);
  // The batch runner's batches changed: report them to the coordinator.
  void OnBatchesChanged(std::vector<v1::BatchState> batches) ABSL_LOCKS_EXCLUDED(mu_);
  // The endpoint is down: hand every question back (attempts unspent), take
  // none, and probe it with back-off until it answers; then ramp up again.
  void OnEndpointDown(const std::string& reason) ABSL_LOCKS_EXCLUDED(mu_);
  void ScheduleProbeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Probe() ABSL_LOCKS_EXCLUDED(mu_);
  void OnProbe(HttpResponse resp) ABSL_LOCKS_EXCLUDED(mu_);
  // After a fatal backend error: stops once the answers received before it
  // are acknowledged (journaled), or the deadline passed.
  // What Drain waits for.
  bool StoppedOrDelivered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinishFailingLocked(bool deadline_passed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancels an ask wherever it went: the Batch API runner or the backend.
  // Returns the requests already sent for it (0 for a Batch API line).
  int CancelAsk(uint64_t ask_id);
  // The server has the ask's request (an answer may still come): an online
  // request being sent, or any Batch API ask (it waits for its batch; the
  // runner's own online retries hand back through their done callback).
  bool AskAtServerLocked(uint64_t ask_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  WorkerOptions options_;
  const std::string instance_id_;  // random: tells a reconnect from a namesake
  std::unique_ptr<v1::Coordinator::Stub> stub_;

  absl::Mutex mu_;
  // Signalled on every change the connection loop may act on (it also wakes
  // for heartbeats); other waits use Mutex::Await on their condition.
  absl::CondVar cv_;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // current stream, if any
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;  // ended and destroyed
  grpc::Status stream_status_ ABSL_GUARDED_BY(mu_);
  bool welcomed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  absl::flat_hash_map<std::string, v1::RunInfo> runs_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Lease> queued_ ABSL_GUARDED_BY(mu_);
  // Image bytes this stream's coordinator sent, by SHA-256; leases name them.
  std::map<std::string, v1::ImageData> images_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Inflight> inflight_ ABSL_GUARDED_BY(mu_);      // by lease id
  absl::flat_hash_map<std::string, v1::Result> unacked_ ABSL_GUARDED_BY(mu_);  // by "run#index"
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  v1::WorkerMessage outbox_ ABSL_GUARDED_BY(mu_);  // results waiting for the linger to pass
  bool flush_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  int limit_ ABSL_GUARDED_BY(mu_) = 0;      // requests in flight allowed now
  // What limit_ returns to after a ramp: --concurrency, or the coordinator's
  // share with auto concurrency.
  int target_ ABSL_GUARDED_BY(mu_) = 0;
  int ok_streak_ ABSL_GUARDED_BY(mu_) = 0;  // attempts since the last 429 or raise
  bool logged_backoff_ ABSL_GUARDED_BY(mu_) = false;
  v1::EndpointState endpoint_state_ ABSL_GUARDED_BY(mu_);  // down while probing
  v1::BatchReport batch_report_ ABSL_GUARDED_BY(mu_);      // the batch runner's last news
  uint64_t probe_timer_ ABSL_GUARDED_BY(mu_) = 0;
  bool ramping_ ABSL_GUARDED_BY(mu_) = false;  // back from down: +1 request in flight per answer
  // A fatal backend error (401, say) seen; answers still being delivered.
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
  std::string failure_ ABSL_GUARDED_BY(mu_);
  absl::Time fail_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::atomic<bool> grant_report_pending_{false};

  // ~Worker calls Stop() before any member goes: it joins the connection
  // thread (no stream is left), stops the batch runner while the HTTP loop
  // still runs (it waits on its own transfers), then stops the HTTP loop, so
  // no transfer or timer callback (they use the backend, the runner and the
  // state above) runs during destruction. Members then go in reverse order:
  // batch_ and backend_ (both hold &http_) before http_.
  HttpClient http_;
  ChatBackend backend_;
  std::unique_ptr<BatchRunner> batch_;  // batch mode only
  std::thread thread_;
  absl::Mutex stop_mu_;  // held through Stop, so the thread is joined once
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_WORKER_H_
