// Answers a worker's leased questions through a Batch API instead of one
// request each (`run --batch`, `batch: true`): at half the price on hosted
// providers, within their 24 h window.
//
// Asks wait a moment (`linger`) for more to arrive, then become one or more
// batches, split by the provider's limits (lines, bytes, enqueued tokens).
// Each line's body is exactly the online request (BuildChatRequest); its
// custom_id is the question's key ("<run>#<index>"), so results (which come
// in any order) find their question. A batch is polled with back-off; when
// it ends its output and error files are read and each answer handed to the
// question's done callback. Lines that failed (an error line, an expired or
// cancelled batch, a missing line) are asked online with the normal retry
// policy, or in a new batch with `retry_in_batch`.
//
// Durability: before a batch is created its input file id and custom_ids are
// written (fsync'd) to the state file, and its id right after, so a worker
// that crashed or was restarted re-attaches to its batches (found by id, or
// by input file when the crash came between the two writes) instead of
// submitting and paying again; questions leased to it again wait for their
// batch. Results that arrive before their question is leased again are kept
// until it is.
//
// Every call to the Batch API goes to the endpoint as it is now (a local
// server restarted on a new port moves it: SetEndpoint) with the worker's
// extra headers and the run's (kept in the state file, for re-attaching).
//
// Thread-safety: every method is thread-safe; Ask, Cancel, SetEndpoint and
// SetCancelOnExit only queue or set (they may be called under the caller's
// lock). Done callbacks and `on_change` run on the runner's own thread (or
// the HTTP loop thread for online retries), without its lock.
#ifndef MEDEVAL_WORKER_BATCH_RUNNER_H_
#define MEDEVAL_WORKER_BATCH_RUNNER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/batch_client.h"
#include "worker/batch_format.h"
#include "worker/chat_backend.h"

namespace medeval {

struct BatchSettings {
  bool enabled = false;
  std::string state_dir;  // where batch ids are kept; "" keeps them in memory only
  // Provider limits per batch (OpenAI's): requests, input file bytes, and
  // prompt tokens enqueued at once (0: no limit).
  int64_t max_lines = 50000;
  int64_t max_bytes = 200 << 20;
  int64_t max_enqueued_tokens = 0;
  absl::Duration linger = absl::Seconds(2);  // wait for more questions before submitting
  absl::Duration poll_min = absl::Seconds(1);
  absl::Duration poll_max = absl::Seconds(60);
  bool cancel_on_exit = false;  // --batch-on-exit cancel (SetCancelOnExit changes it)
  bool retry_in_batch = false;  // --batch-retry batch
};

class BatchRunner {
 public:
  // `on_change`: a batch was created, changed state or counts, or ended;
  // it gets batches() as they are now. May be empty.
  using OnChange = std::function<void(std::vector<v1::BatchState>)>;
  BatchRunner(HttpClient* http, ChatBackend* online, const BackendConfig& config,
              BatchSettings settings, const std::string& model, OnChange on_change = nullptr);
  ~BatchRunner();
  BatchRunner(const BatchRunner&) = delete;
  BatchRunner& operator=(const BatchRunner&) = delete;

  uint64_t Ask(const v1::RunInfo& run, const v1::Lease& lease, ChatBackend::Done done);
  void Cancel(uint64_t ask_id);
  // Stops the runner's thread (after cancelling its batches with
  // cancel_on_exit). Its calls go through the HTTP client: call this while
  // the client's loop still runs. Idempotent (one caller at a time); the
  // destructor calls it too.
  void Stop();
  // Later Batch API calls go to `endpoint` (a local server on a new port).
  void SetEndpoint(const Endpoint& endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  // What Stop does with unfinished batches (the user's answer at Ctrl-C).
  void SetCancelOnExit(bool cancel) ABSL_LOCKS_EXCLUDED(mu_);

  // The batches followed (finished ones too), as last seen.
  std::vector<v1::BatchState> batches() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct AskEntry {
    std::string custom_id;
    v1::RunInfo run;
    v1::Lease lease;
    ChatBackend::Done done;
    uint64_t online_id = 0;  // asked online: the backend's id
    bool retried_in_batch = false;
  };
  struct Submitted {
    std::string run_id;
    // The run's extra (non-credential) headers: every call about the batch
    // sends them, as the online requests of the run do.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string input_file_id;
    std::string batch_id;  // "" until created
    std::vector<std::string> custom_ids;
    int64_t tokens = 0;
    BatchInfo info;
    absl::Time created = absl::Now();
    absl::Time next_poll = absl::InfinitePast();
    absl::Duration backoff;
  };

  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  void LoadState();
  absl::Status SaveStateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SubmitPending(std::vector<uint64_t> ids);
  void Poll(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  void Finish(const std::string& key, const BatchInfo& info);
  // Hands `result` to its question (or keeps it for later).
  void Deliver(BatchLineResult result, const std::string& batch_id);
  void AskOnline(uint64_t id);
  // A client for the calls about batch `key` (by input file; "" for none
  // yet, with `headers`): today's endpoint, the worker's and the run's
  // headers.
  BatchClient ClientFor(const std::string& key,
                        const std::vector<std::pair<std::string, std::string>>& headers = {})
      ABSL_LOCKS_EXCLUDED(mu_);
  void Changed();

  HttpClient* const http_;
  ChatBackend* const online_;
  const BackendConfig config_;
  const BatchSettings settings_;
  const std::string state_path_;
  const OnChange on_change_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  Endpoint endpoint_ ABSL_GUARDED_BY(mu_);
  bool cancel_on_exit_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, AskEntry> asks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> by_custom_id_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> pending_ ABSL_GUARDED_BY(mu_);
  absl::Time first_pending_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::map<std::string, Submitted> submitted_ ABSL_GUARDED_BY(mu_);  // by input file
  absl::flat_hash_map<std::string, std::string> in_batch_
      ABSL_GUARDED_BY(mu_);  // custom_id -> file
  absl::flat_hash_map<std::string, BatchLineResult> early_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> ready_ ABSL_GUARDED_BY(mu_);  // early results
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_BATCH_RUNNER_H_
