// A run's data as the scheduler, the state directory and the merger pass it
// between them: the per-question states, a run as loaded from disk, and what
// the merger needs to write a finished run's outputs. Plain data: the
// scheduler (coordinator/scheduler.h) owns the live state.
//
// Thread-safety: plain structs; whoever holds one guards it.
#ifndef MEDEVAL_COORDINATOR_RUN_STATE_H_
#define MEDEVAL_COORDINATOR_RUN_STATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/cost.h"
#include "common/suite.h"
#include "coordinator/journal.h"
#include "coordinator/run_images.h"
#include "proto/medeval.pb.h"

namespace medeval {

// Per-question progress, as journaled.
enum QuestionState : uint8_t {
  kPending = 0,
  kLeased = 1,
  kAnswered = 2,
  kFailed = 3,
};

// A run as recovered from disk (or just created): spec, questions, journal,
// and the per-question state rebuilt from the journal.
struct LoadedRun {
  v1::RunSpec spec;
  std::shared_ptr<const Suite> suite;
  std::shared_ptr<const RunImages> images;  // VLM runs
  std::shared_ptr<JournalFile> journal;
  std::string output_dir;
  std::vector<uint8_t> state;    // kPending, kAnswered or kFailed per question
  std::vector<uint64_t> offset;  // journal offset of each accepted record
  // Error of each failed question ("Dataset:line: error" is built from it).
  absl::flat_hash_map<uint32_t, std::string> failure_errors;
  uint64_t retries = 0;    // sum of (attempts - 1) over accepted records
  uint64_t truncated = 0;  // answers cut off at max_tokens
  TokenTally tokens;       // of the accepted records (the run's cost so far)
  // Requests of copies whose results were not kept, per question.
  absl::flat_hash_map<uint32_t, uint32_t> more_attempts;
  // Outputs of a settled run are on disk already (no merge needed).
  bool outputs_ready = false;
  absl::Time finished = absl::InfinitePast();
};

// What the merger needs to write a finished run's outputs.
struct RunSnapshot {
  v1::RunSpec spec;
  std::shared_ptr<const Suite> suite;
  std::shared_ptr<JournalFile> journal;
  std::string output_dir;
  std::vector<uint8_t> state;
  std::vector<uint64_t> offset;
  uint64_t duplicates = 0;
  // Requests of copies whose results were not kept, per question: added to
  // the kept record's attempts.
  absl::flat_hash_map<uint32_t, uint32_t> more_attempts;
  absl::Time finished;
};

}  // namespace medeval

#endif  // MEDEVAL_COORDINATOR_RUN_STATE_H_
