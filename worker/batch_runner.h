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
// Thread-safety: Ask and Cancel are thread-safe and only queue (they may be
// called under the caller's lock). Done callbacks run on the runner's own
// thread (or the HTTP loop thread for online retries), without its lock.
#ifndef MEDEVAL_WORKER_BATCH_RUNNER_H_
#define MEDEVAL_WORKER_BATCH_RUNNER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
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
  bool cancel_on_exit = false;  // --batch-on-exit cancel
  bool retry_in_batch = false;  // --batch-retry batch
};

class BatchRunner {
 public:
  BatchRunner(HttpClient* http, ChatBackend* online, const BackendConfig& config,
              BatchSettings settings, const std::string& model);
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

  struct BatchView {
    std::string id;
    std::string status;
    int64_t total = 0, completed = 0, failed = 0;
    absl::Time created;
  };
  std::vector<BatchView> batches();

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

  HttpClient* const http_;
  ChatBackend* const online_;
  const BackendConfig config_;
  const BatchSettings settings_;
  const std::string state_path_;
  BatchClient client_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, AskEntry> asks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> by_custom_id_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> pending_ ABSL_GUARDED_BY(mu_);
  absl::Time first_pending_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::map<std::string, Submitted> submitted_ ABSL_GUARDED_BY(mu_);  // by input file
  absl::flat_hash_map<std::string, std::string> in_batch_ ABSL_GUARDED_BY(mu_);  // custom_id -> file
  absl::flat_hash_map<std::string, BatchLineResult> early_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> ready_ ABSL_GUARDED_BY(mu_);  // early results
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace medeval

#endif  // MEDEVAL_WORKER_BATCH_RUNNER_H_
