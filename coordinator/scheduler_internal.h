// The scheduler's private records of a run and of a connected worker,
// shared by the files that implement the Scheduler (scheduler.cc, and its
// rate limits and status reports). Not for use outside the scheduler.
//
// Thread-safety: every field is guarded by the owning Scheduler's mutex.
#ifndef MEDEVAL_COORDINATOR_SCHEDULER_INTERNAL_H_
#define MEDEVAL_COORDINATOR_SCHEDULER_INTERNAL_H_

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "coordinator/scheduler.h"

namespace medeval {

struct Scheduler::Run {
  uint32_t num = 0;
  v1::RunSpec spec;
  std::shared_ptr<const Suite> suite;
  std::shared_ptr<const RunImages> images;
  std::vector<uint32_t> starts;  // first question index of each dataset
  std::shared_ptr<JournalFile> journal;
  std::string output_dir;
  std::vector<uint8_t> state;
  std::vector<uint8_t> holders;  // live leases per question
  std::vector<uint64_t> offset;
  std::deque<uint32_t> queue;  // pending questions; may hold stale entries
  uint64_t pending = 0;        // questions in kPending
  uint64_t leased = 0;         // questions in kLeased
  uint64_t answered = 0;       // durable answers
  uint64_t failed = 0;         // durable failures
  uint64_t unsynced = 0;       // accepted, not yet durable
  uint64_t duplicates = 0;
  uint64_t retries = 0;
  uint64_t truncated = 0;  // durable answers cut off at max_tokens
  TokenTally tokens;       // of the durable records: the cost so far
  // Batch API batches by the worker that follows them: kept when it leaves
  // (the batches live on at the provider), replaced by its next report.
  std::map<std::string, std::vector<v1::BatchState>> batches;
  // Requests of copies whose results were not kept (see JournalEntry).
  absl::flat_hash_map<uint32_t, uint32_t> more_attempts;
  // Cancelled copies that have not said how many requests they sent: the
  // run is not complete (its records would miss them) until they do or
  // their worker leaves.
  uint64_t awaiting_copies = 0;
  absl::flat_hash_map<uint32_t, std::string> failure_errors;
  RunPhase phase = RunPhase::kRunning;
  absl::Time finished = absl::InfinitePast();
  std::string error;
  double lease_secs_ewma = 0;                           // typical time from lease to result
  std::deque<std::pair<absl::Time, uint64_t>> samples;  // (time, answered)

  size_t total() const { return state.size(); }
  size_t Dataset(uint32_t q) const {
    return static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), q) - starts.begin()) -
           1;
  }
  std::string Describe(uint32_t q) const {
    size_t d = Dataset(q);
    const medeval::Dataset& ds = suite->datasets[d];
    return absl::StrCat(ds.file.name, ":", ds.line(q - starts[d]));
  }
};

struct Scheduler::Worker {
  std::string id;
  v1::Hello hello;
  WorkerChannel* channel = nullptr;
  absl::flat_hash_set<uint64_t> leases;
  // Leases cancelled on this stream whose requests are not reported yet:
  // lease id -> (run number, question).
  absl::flat_hash_map<uint64_t, std::pair<uint32_t, uint32_t>> cancelled;
  absl::flat_hash_set<uint32_t> runs_sent;  // RunInfo already sent on this stream
  absl::Time connected;
  absl::Time last_seen;
  bool draining = false;
  bool paused = false;         // its model server is restarting
  v1::EndpointState endpoint;  // down: it probes its endpoint and takes no work
  std::string error;
  uint64_t answered = 0;
  // Grants (rate-limited models): attempts the worker has waiting, grants it
  // has seen, grants sent.
  uint32_t want_grants = 0;
  uint64_t grants_seen = 0;
  uint64_t granted = 0;
  uint64_t grant_demand() const {
    const uint64_t on_the_way = granted - std::min(granted, grants_seen);
    return want_grants > on_the_way ? want_grants - on_the_way : 0;
  }
  // Auto concurrency: its share of the model's limit; 0 before the first
  // share, or with a fixed concurrency.
  uint32_t share = 0;
  bool usable() const { return !draining && !paused && !endpoint.down() && error.empty(); }
  // Leases it may hold: what it may have in flight, plus a local queue so
  // it never waits for the next lease (auto: a quarter of its share, >= 2).
  size_t capacity() const {
    if (hello.auto_concurrency()) return share == 0 ? 0 : share + std::max<uint32_t>(2, share / 4);
    return hello.max_inflight() + hello.prefetch();
  }
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_SCHEDULER_INTERNAL_H_
